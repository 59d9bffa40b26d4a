import Testing
@testable import Monitor

/// `IndexState.diff(from:to:)` (what a resync reports) and `init(devices:parents:domains:)` (what a full
/// sync builds).
@Suite struct IndexStateDiffTests {
    private func referenced(_ device: MdevDevice, by domains: [String]) -> MdevDevice {
        var d = device
        d.domains = domains
        return d
    }

    @Test func identicalStatesHaveNoDiff() {
        let state = IndexState(
            devices: [Sample.device(Sample.uuidA)], parents: [Sample.parentDevice()],
            domains: [Sample.domain("vm", uuids: [Sample.uuidA])])
        #expect(IndexState.diff(from: state, to: state) == [])
        #expect(IndexState.diff(from: IndexState(), to: IndexState()) == [])
    }

    @Test func fromEmptyEverythingIsAddedDomainsThenParentsThenDevicesInKeyOrder() {
        let b = Sample.device(Sample.uuidB)
        let a1 = Sample.device(Sample.uuidA, parent: Sample.gpu1)
        let a0 = Sample.device(Sample.uuidA, parent: Sample.gpu0)
        let p1 = Sample.parentDevice(Sample.gpu1), p0 = Sample.parentDevice(Sample.gpu0)
        let vmZ = Sample.domain("z", uuids: []), vmA = Sample.domain("a", uuids: [])
        let state = IndexState(devices: [b, a1, a0], parents: [p1, p0], domains: [vmZ, vmA])
        #expect(IndexState.diff(from: IndexState(), to: state) == [
            .domainAdded(vmA), .domainAdded(vmZ),
            .parentAdded(p0), .parentAdded(p1),
            .deviceAdded(a0), .deviceAdded(a1), .deviceAdded(b),
        ])
        #expect(IndexState.diff(from: state, to: IndexState()) == [
            .domainRemoved(vmA), .domainRemoved(vmZ),
            .parentRemoved(p0), .parentRemoved(p1),
            .deviceRemoved(a0), .deviceRemoved(a1), .deviceRemoved(b),
        ])
    }

    @Test func removalsComeFirstThenAdditionsAndChangesInKeyOrder() {
        let vmA = Sample.domain("a", uuids: [Sample.uuidA]), vmB = Sample.domain("b", uuids: [])
        let gpu0 = Sample.parentDevice(Sample.gpu0, available: 2), gpu1 = Sample.parentDevice(Sample.gpu1)
        let a0 = Sample.device(Sample.uuidA, parent: Sample.gpu0)
        let b = Sample.device(Sample.uuidB), c = Sample.device(Sample.uuidC)
        let old = IndexState(devices: [a0, b, c], parents: [gpu0, gpu1], domains: [vmA, vmB])

        let vmARunning = Sample.domain("a", uuids: [Sample.uuidA], active: true), vmC = Sample.domain("c", uuids: [])
        let gpu0Fewer = Sample.parentDevice(Sample.gpu0, available: 1)
        let ap = ParentDevice(name: "ap_matrix", kind: "ap_matrix", types: [])
        let a0Active = Sample.device(Sample.uuidA, parent: Sample.gpu0, active: true)
        let a1 = Sample.device(Sample.uuidA, parent: Sample.gpu1)
        let new = IndexState(
            devices: [a1, c, a0Active], parents: [gpu0Fewer, ap], domains: [vmC, vmARunning])

        #expect(IndexState.diff(from: old, to: new) == [
            .domainRemoved(vmB),
            .domainChanged(old: vmA, new: vmARunning),
            .domainAdded(vmC),
            .parentRemoved(gpu1),
            .parentAdded(ap),
            .parentChanged(old: gpu0, new: gpu0Fewer),
            .deviceRemoved(b),
            .deviceChanged(old: referenced(a0, by: ["a"]), new: referenced(a0Active, by: ["a"])),
            .deviceAdded(referenced(a1, by: ["a"])),
        ])
    }

    @Test func aReferenceChangeAloneIsADeviceChange() {
        let a = Sample.device(Sample.uuidA)
        let old = IndexState(devices: [a], parents: [], domains: [])
        let vm = Sample.domain("vm", uuids: [Sample.uuidA])
        let new = IndexState(devices: [a], parents: [], domains: [vm])
        #expect(IndexState.diff(from: old, to: new) == [
            .domainAdded(vm),
            .deviceChanged(old: a, new: referenced(a, by: ["vm"])),
        ])
    }

    @Test func initEqualsIncrementalUpsertsInAnyOrder() {
        let devices = [Sample.device(Sample.uuidA), Sample.device(Sample.uuidA, parent: Sample.gpu1),
                       Sample.device(Sample.uuidB, active: true)]
        let parents = [Sample.parentDevice(Sample.gpu0), Sample.parentDevice(Sample.gpu1)]
        let domains = [Sample.domain("vm1", uuids: [Sample.uuidA]), Sample.domain("vm2", uuids: [Sample.uuidA, Sample.uuidB])]
        let built = IndexState(devices: devices, parents: parents, domains: domains)

        // Devices before the domains that reference them: the references arrive with the domains.
        var incremental = IndexState()
        for d in devices { _ = incremental.upsertDevice(d.definition, flags: d.flags) }
        for p in parents { _ = incremental.upsertParent(p) }
        for d in domains { _ = incremental.upsertDomain(d) }
        #expect(incremental == built)
        #expect(built.devices(uuid: Sample.uuidA).map(\.domains) == [["vm1", "vm2"], ["vm1", "vm2"]])
        #expect(built.devices(uuid: Sample.uuidB).map(\.domains) == [["vm2"]])
    }

    @Test func stateAfterRemovalsEqualsAFreshStateWithTheSameContent() {
        let a = Sample.device(Sample.uuidA), b = Sample.device(Sample.uuidB)
        var incremental = IndexState()
        _ = incremental.upsertDomain(Sample.domain("gone", uuids: [Sample.uuidA, Sample.uuidC]))
        _ = incremental.upsertDomain(Sample.domain("vm", uuids: [Sample.uuidA, Sample.uuidB]))
        _ = incremental.upsertDevice(a.definition, flags: a.flags)
        _ = incremental.upsertDevice(b.definition, flags: b.flags)
        _ = incremental.upsertDevice(Sample.definition(Sample.uuidC), flags: Sample.flags())
        _ = incremental.removeDomain(named: "gone")
        _ = incremental.upsertDomain(Sample.domain("vm", uuids: [Sample.uuidA]))
        _ = incremental.removeDevice(named: Sample.name(Sample.uuidC, parent: Sample.gpu0))

        let fresh = IndexState(devices: [a, b], parents: [], domains: [Sample.domain("vm", uuids: [Sample.uuidA])])
        #expect(incremental.devices == fresh.devices)
        #expect(incremental == fresh)
        #expect(IndexState.diff(from: incremental, to: fresh) == [])
    }
}
