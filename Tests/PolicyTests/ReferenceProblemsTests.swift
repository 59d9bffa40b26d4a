import Monitor
import Policy
import Testing

@Suite struct ReferenceProblemsTests {
    let active = "aaaaaaaa-0000-4000-8000-000000000001"
    let inactive = "bbbbbbbb-0000-4000-8000-000000000002"
    let missing = "cccccccc-0000-4000-8000-000000000003"

    @Test func missingAndInactiveReferences() {
        let state = IndexState.with(
            [Sample.device(active, active: true), Sample.device(inactive)],
            domains: [Sample.domain("vm-b", uuids: [active, inactive, missing]),
                      Sample.domain("vm-a", uuids: [missing], autostart: true)])
        #expect(state.referenceProblems == [
            ReferenceProblem(domain: "vm-a", uuid: missing, reason: .missing, domainAutostart: true),
            ReferenceProblem(domain: "vm-b", uuid: inactive, reason: .inactive, domainAutostart: false),
            ReferenceProblem(domain: "vm-b", uuid: missing, reason: .missing, domainAutostart: false),
        ])
    }

    @Test func onlyPersistentDomainsCount() {
        let state = IndexState.with([Sample.device(inactive)], domains: [
            Sample.domain("transient", uuids: [inactive, missing], persistent: false, active: true)])
        #expect(state.referenceProblems.isEmpty)
    }

    @Test func anyActiveInstanceOfTheUUIDSatisfiesTheReference() {
        // The same UUID under two parents: one active is enough.
        let state = IndexState.with(
            [Sample.device(inactive), Sample.device(inactive, parent: Sample.otherParent, active: true)],
            domains: [Sample.domain("vm", uuids: [inactive])])
        #expect(state.referenceProblems.isEmpty)
    }

    @Test func noReferencesNoProblems() {
        #expect(IndexState.with([Sample.device(inactive)]).referenceProblems.isEmpty)
        #expect(IndexState().referenceProblems.isEmpty)
    }

    @Test func orphanedDevicesAreActiveAndUnreferencedByDefinedDomains() {
        let referenced = "dddddddd-0000-4000-8000-000000000004"
        let transientOnly = "eeeeeeee-0000-4000-8000-000000000005"
        let state = IndexState.with(
            [Sample.device(active, active: true), Sample.device(inactive),
             Sample.device(referenced, active: true), Sample.device(transientOnly, active: true)],
            domains: [Sample.domain("vm", uuids: [referenced, inactive]),
                      Sample.domain("tmp", uuids: [transientOnly], persistent: false, active: true)])
        #expect(state.orphanedDevices.map(\.uuid) == [active, transientOnly])
    }

    @Test func trackerReportsAppearAndClearOnce() {
        var tracker = ReferenceTracker()
        let p1 = ReferenceProblem(domain: "vm", uuid: missing, reason: .missing, domainAutostart: false)
        let p2 = ReferenceProblem(domain: "vm", uuid: inactive, reason: .inactive, domainAutostart: false)

        var r = tracker.update([p1])
        #expect(r.appeared == [p1] && r.cleared.isEmpty)
        r = tracker.update([p1])
        #expect(r.appeared.isEmpty && r.cleared.isEmpty, "no repeat")
        r = tracker.update([p2, p1].sorted())
        #expect(r.appeared == [p2] && r.cleared.isEmpty)
        #expect(tracker.current == [p2, p1].sorted())
        r = tracker.update([p2])
        #expect(r.appeared.isEmpty && r.cleared == [p1])
        r = tracker.update([])
        #expect(r.appeared.isEmpty && r.cleared == [p2])
        r = tracker.update([])
        #expect(r.appeared.isEmpty && r.cleared.isEmpty)
    }

    @Test func changedReasonReappearsWithoutBeingCleared() {
        // The missing mdev gets defined (but not started): the problem changes, it is not resolved.
        var tracker = ReferenceTracker()
        let before = ReferenceProblem(domain: "vm", uuid: missing, reason: .missing, domainAutostart: false)
        let after = ReferenceProblem(domain: "vm", uuid: missing, reason: .inactive, domainAutostart: false)
        _ = tracker.update([before])
        let r = tracker.update([after])
        #expect(r.appeared == [after])
        #expect(r.cleared.isEmpty)

        // The domain gains autostart: reported again (now as an error), still not cleared.
        let autostart = ReferenceProblem(domain: "vm", uuid: missing, reason: .inactive, domainAutostart: true)
        let r2 = tracker.update([autostart])
        #expect(r2.appeared == [autostart])
        #expect(r2.cleared.isEmpty)
    }
}

/// Reference evaluation is incremental: a change names only the domains it can affect.
@Suite struct DomainsAffectedTests {
    @Test func aDeviceChangeAffectsOnlyTheDomainsReferencingItsUUID() {
        let a = Sample.uuid(), b = Sample.uuid()
        let state = IndexState.with([Sample.device(a), Sample.device(b)], domains: [
            Sample.domain("vm-a", uuids: [a]), Sample.domain("vm-ab", uuids: [a, b]), Sample.domain("vm-none", uuids: []),
        ])
        #expect(state.domainsAffected(by: [.deviceAdded(Sample.device(b))]) == ["vm-ab"])
        #expect(state.domainsAffected(by: [.deviceRemoved(Sample.device(a))]) == ["vm-a", "vm-ab"])
        #expect(state.domainsAffected(by: [.domainAdded(Sample.domain("vm-x", uuids: [a]))]) == ["vm-x"])
        #expect(state.domainsAffected(by: [.parentAdded(Sample.parentDevice()), .connection(.synced)]).isEmpty)
        // Ten thousand other devices change nothing for these domains.
        let others = (0..<10_000).map { IndexChange.deviceAdded(Sample.device(String(format: "00000000-0000-4000-8000-%012d", $0))) }
        #expect(state.domainsAffected(by: others).isEmpty)
    }
}
