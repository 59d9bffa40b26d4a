import Foundation
import Monitor
@testable import Policy
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
        #expect(state.domainsAffected(by: [.parentAdded(Sample.parentDevice(Sample.otherParent)), .connection(.synced)]).isEmpty)
        // A parent concerns the domains of its inactive devices (their capacity), for the types that moved.
        #expect(state.domainsAffected(by: [.parentAdded(Sample.parentDevice())]) == ["vm-a", "vm-ab"])
        #expect(state.domainsAffected(by: [.parentChanged(old: Sample.parentDevice(available: 4),
                                                          new: Sample.parentDevice(available: 0))]) == ["vm-a", "vm-ab"])
        // Every start and stop moves the count; only running out (or becoming available) matters.
        #expect(state.domainsAffected(by: [.parentChanged(old: Sample.parentDevice(available: 4),
                                                          new: Sample.parentDevice(available: 2))]).isEmpty)
        #expect(state.domainsAffected(by: [.parentChanged(old: Sample.parentDevice(available: 4, type: "other"),
                                                          new: Sample.parentDevice(available: 0, type: "other"))]).isEmpty)
        // Ten thousand other devices change nothing for these domains.
        let others = (0..<10_000).map { IndexChange.deviceAdded(Sample.device(String(format: "00000000-0000-4000-8000-%012d", $0))) }
        #expect(state.domainsAffected(by: others).isEmpty)
    }
}

/// Why a defined domain could not start now, per referenced mdev (issue 16).
@Suite struct StartBlockerTests {
    let u = "aaaaaaaa-1111-4000-8000-000000000001"

    private func reasons(_ state: IndexState, _ domain: String = "vm") -> [ReferenceProblem.Reason] {
        state.referenceProblems(ofDomain: domain).map(\.reason)
    }

    @Test func inactiveWithRoomIsInactive() {
        let state = IndexState.with([Sample.device(u)], domains: [Sample.domain("vm", uuids: [u])])
        #expect(reasons(state) == [.inactive])
    }

    @Test func inactiveWithoutRoomIsNoCapacityOrTypeNotOffered() {
        let domains = [Sample.domain("vm", uuids: [u])]
        // Used up.
        var state = IndexState(devices: [Sample.device(u)], parents: [Sample.parentDevice(available: 0)], domains: domains)
        #expect(reasons(state) == [.noCapacity])
        // Freeing one instance clears it to inactive.
        _ = state.upsertParent(Sample.parentDevice(available: 1))
        #expect(reasons(state) == [.inactive])
        // The parent does not offer the type (its driver has not registered it), or offers no mdev types
        // at all (outside the index): not a capacity problem.
        state = IndexState(devices: [Sample.device(u)], parents: [Sample.parentDevice(available: 3, type: "other")], domains: domains)
        #expect(reasons(state) == [.typeNotOffered])
        state = IndexState(devices: [Sample.device(u)], parents: [], domains: domains)
        #expect(reasons(state) == [.typeNotOffered])
        // The driver registers it.
        _ = state.upsertParent(Sample.parentDevice(available: 0))
        #expect(reasons(state) == [.noCapacity])
    }

    @Test func underThePlaceholderParentIsParentMissing() {
        let state = IndexState.with([Sample.device(u, parent: IndexState.placeholderParent)],
                                    domains: [Sample.domain("vm", uuids: [u])])
        #expect(reasons(state) == [.parentMissing])
    }

    @Test func heldByAnotherRunningDomainIsInUse() {
        let state = IndexState.with([Sample.device(u, active: true)], domains: [
            Sample.domain("vm", uuids: [u]), Sample.domain("runner", uuids: [u], live: [u]),
        ])
        let problems = state.referenceProblems(ofDomain: "vm")
        #expect(problems == [ReferenceProblem(domain: "vm", uuid: u, reason: .inUse, domainAutostart: false, heldBy: ["runner"])])
        // The holder itself is fine: it has what it needs.
        #expect(state.referenceProblems(ofDomain: "runner").isEmpty)
    }

    @Test func aHotplugAffectsTheOtherDomainsReferencingTheDevice() {
        var state = IndexState.with([Sample.device(u, active: true)], domains: [
            Sample.domain("vm", uuids: [u]), Sample.domain("runner", uuids: [], active: true),
        ])
        #expect(reasons(state).isEmpty)
        let changes = state.upsertDomain(Sample.domain("runner", uuids: [], live: [u]))
        #expect(state.domainsAffected(by: changes) == ["vm", "runner"])
        #expect(reasons(state) == [.inUse])
    }

    @Test func theBestDeviceOfAUUIDStands() {
        // The same UUID under two parents: one whose parent is gone, one that could be started.
        let state = IndexState.with(
            [Sample.device(u, parent: IndexState.placeholderParent), Sample.device(u, parent: Sample.otherParent)],
            domains: [Sample.domain("vm", uuids: [u])], parents: [Sample.otherParent])
        #expect(reasons(state) == [.inactive])
    }

    @Test func anActiveDeviceOfTheUUIDDecidesAlone() {
        // Inactive with room under one parent, but active and held under another: the kernel would refuse
        // a second mdev with this UUID, so starting the inactive one would not do.
        let state = IndexState.with(
            [Sample.device(u), Sample.device(u, parent: Sample.otherParent, active: true)],
            domains: [Sample.domain("vm", uuids: [u]), Sample.domain("runner", uuids: [], live: [u])])
        #expect(reasons(state) == [.inUse])
        let free = IndexState.with(
            [Sample.device(u), Sample.device(u, parent: Sample.otherParent, active: true)],
            domains: [Sample.domain("vm", uuids: [u])])
        #expect(reasons(free).isEmpty)
    }

    @Test func aDeviceInUseIsNotOrphaned() {
        let state = IndexState.with([Sample.device(u, active: true)], domains: [
            Sample.domain("runner", uuids: [], live: [u]),
        ])
        #expect(state.orphanedDevices.isEmpty)
        #expect(IndexState.with([Sample.device(u, active: true)]).orphanedDevices.map(\.uuid) == [u])
    }

    @Test func domainListingShowsStateAndBlockers() throws {
        let state = IndexState.with([Sample.device(u, active: true)], domains: [
            Sample.domain("vm", uuids: [u], autostart: true), Sample.domain("runner", uuids: [u], live: [u]),
            Sample.domain("plain", uuids: []),
        ])
        let listing = DomainListing(state)
        #expect(listing.domains.map(\.name) == ["runner", "vm"], "a domain without mdevs is left out")
        #expect(listing.domains[1].startable == false)
        #expect(listing.domains[1].blockers == [.init(uuid: u, reason: "in_use", heldBy: ["runner"])])
        #expect(listing.table() == """
            DOMAIN  STATE     PERSISTENCE  AUTOSTART  MDEVS                                 IN_USE                                STARTABLE  BLOCKERS
            runner  active    persistent   no         \(u)  \(u)  yes        -
            vm      inactive  persistent   yes        \(u)  -                                     no         \(u):in_use(runner)

            """)
        let json = try #require(try JSONSerialization.jsonObject(with: listing.json()) as? [String: Any])
        let domains = try #require(json["domains"] as? [[String: Any]])
        #expect(Set(domains[1].keys) == ["name", "uuid", "state", "persistent", "autostart", "mdevs", "live_mdevs",
                                         "startable", "blockers"])
    }
}
