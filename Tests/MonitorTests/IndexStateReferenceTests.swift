import Testing
@testable import Monitor

/// Domain references: each device's `domains` follows the domains whose inactive XML names its UUID.
@Suite struct IndexStateReferenceTests {
    /// Two devices sharing uuidA (two parents) and one with uuidB.
    private func stateWithDevices() -> (IndexState, a0: MdevDevice, a1: MdevDevice, b: MdevDevice) {
        var state = IndexState()
        let a0 = Sample.device(Sample.uuidA, parent: Sample.gpu0)
        let a1 = Sample.device(Sample.uuidA, parent: Sample.gpu1)
        let b = Sample.device(Sample.uuidB)
        for d in [a0, a1, b] { _ = state.upsertDevice(d.definition, flags: d.flags) }
        return (state, a0, a1, b)
    }

    private func withDomains(_ device: MdevDevice, _ domains: [String]) -> MdevDevice {
        var d = device
        d.domains = domains
        return d
    }

    @Test func addedDomainReferencesEveryDeviceWithItsUUID() {
        let (initial, a0, a1, b) = stateWithDevices()
        var state = initial
        let vm = Sample.domain("vm1", uuids: [Sample.uuidA])
        #expect(state.upsertDomain(vm) == [
            .domainAdded(vm),
            .deviceChanged(old: a0, new: withDomains(a0, ["vm1"])),
            .deviceChanged(old: a1, new: withDomains(a1, ["vm1"])),
        ])
        #expect(state.devices(uuid: Sample.uuidA).map(\.domains) == [["vm1"], ["vm1"]])
        #expect(state.devices[b.key] == b)
    }

    @Test func referencingDomainsAreSorted() {
        let (initial, a0, _, _) = stateWithDevices()
        var state = initial
        _ = state.upsertDomain(Sample.domain("zeta", uuids: [Sample.uuidA]))
        let alpha = Sample.domain("alpha", uuids: [Sample.uuidA])
        let changes = state.upsertDomain(alpha)
        #expect(changes.first == .domainAdded(alpha))
        #expect(changes.dropFirst().map(\.device?.domains) == [["alpha", "zeta"], ["alpha", "zeta"]])
        #expect(state.devices[a0.key]?.domains == ["alpha", "zeta"])
    }

    @Test func deviceAddedAfterTheDomainIsReferencedAtOnce() {
        var state = IndexState()
        let vm = Sample.domain("vm1", uuids: [Sample.uuidC])
        #expect(state.upsertDomain(vm) == [.domainAdded(vm)])
        let device = Sample.device(Sample.uuidC)
        #expect(state.upsertDevice(device.definition, flags: device.flags) == [.deviceAdded(withDomains(device, ["vm1"]))])
    }

    @Test func removedDomainDropsItsReferences() {
        let (initial, a0, a1, _) = stateWithDevices()
        var state = initial
        let vm = Sample.domain("vm1", uuids: [Sample.uuidA])
        _ = state.upsertDomain(vm)
        #expect(state.removeDomain(named: "vm1") == [
            .domainRemoved(vm),
            .deviceChanged(old: withDomains(a0, ["vm1"]), new: a0),
            .deviceChanged(old: withDomains(a1, ["vm1"]), new: a1),
        ])
        #expect(state.domains.isEmpty)
        #expect(state.removeDomain(named: "vm1") == [])
    }

    @Test func changedDomainDropsOnlyTheUUIDItNoLongerNames() {
        let (initial, a0, a1, b) = stateWithDevices()
        var state = initial
        let before = Sample.domain("vm1", uuids: [Sample.uuidA, Sample.uuidB])
        _ = state.upsertDomain(before)
        let after = Sample.domain("vm1", uuids: [Sample.uuidB])
        #expect(state.upsertDomain(after) == [
            .domainChanged(old: before, new: after),
            .deviceChanged(old: withDomains(a0, ["vm1"]), new: a0),
            .deviceChanged(old: withDomains(a1, ["vm1"]), new: a1),
        ])
        #expect(state.devices[b.key]?.domains == ["vm1"])
    }

    @Test func domainStateChangeWithoutNewReferencesTouchesNoDevice() {
        var state = stateWithDevices().0
        let stopped = Sample.domain("vm1", uuids: [Sample.uuidA])
        _ = state.upsertDomain(stopped)
        let running = Sample.domain("vm1", uuids: [Sample.uuidA], active: true)
        #expect(state.upsertDomain(running) == [.domainChanged(old: stopped, new: running)])
        #expect(state.upsertDomain(running) == [])
    }

    @Test func removedDeviceKeepsNoReferenceButTheDomainStillNamesTheUUID() {
        let (initial, a0, _, _) = stateWithDevices()
        var state = initial
        _ = state.upsertDomain(Sample.domain("vm1", uuids: [Sample.uuidA]))
        #expect(state.removeDevice(named: a0.name) == [.deviceRemoved(withDomains(a0, ["vm1"]))])
        // Defined again later: the reference comes back with it.
        #expect(state.upsertDevice(a0.definition, flags: a0.flags) == [.deviceAdded(withDomains(a0, ["vm1"]))])
    }
}
