import Testing
@testable import Monitor

/// Running domains' use of mdevs: each device's `inUseBy` follows the live XML of running domains, apart
/// from the configuration references (`domains`).
@Suite struct IndexStateInUseTests {
    @Test func hotplugIntoARunningDomainMarksTheDeviceInUseOnly() {
        var state = IndexState()
        let device = Sample.device(Sample.uuidA, active: true)
        _ = state.upsertDevice(device.definition, flags: device.flags)
        let stopped = Sample.domain("vm1", uuids: [])
        _ = state.upsertDomain(stopped)
        // `virsh start`, then `attach-device --live`: the live XML holds it, the configuration does not.
        let running = Sample.domain("vm1", uuids: [], live: [Sample.uuidA])
        var inUse = device
        inUse.inUseBy = ["vm1"]
        #expect(state.upsertDomain(running) == [
            .domainChanged(old: stopped, new: running), .deviceChanged(old: device, new: inUse),
        ])
        #expect(state.devices[device.key]?.domains == [])
        #expect(state.domainsUsing(Sample.uuidA) == ["vm1"])
        // The domain stops: released.
        #expect(state.upsertDomain(stopped) == [
            .domainChanged(old: running, new: stopped), .deviceChanged(old: inUse, new: device),
        ])
        #expect(state.domainsUsing(Sample.uuidA).isEmpty)
    }

    @Test func aDeviceAppearingUnderARunningDomainIsInUseAtOnce() {
        var state = IndexState()
        _ = state.upsertDomain(Sample.domain("vm1", uuids: [Sample.uuidB], live: [Sample.uuidB]))
        let device = Sample.device(Sample.uuidB, active: true)
        let changes = state.upsertDevice(device.definition, flags: device.flags)
        #expect(changes.map(\.device?.inUseBy) == [["vm1"]])
        #expect(changes.map(\.device?.domains) == [["vm1"]])
    }

    @Test func removingARunningDomainReleasesItsDevices() {
        var state = IndexState()
        let device = Sample.device(Sample.uuidA, active: true)
        _ = state.upsertDevice(device.definition, flags: device.flags)
        _ = state.upsertDomain(Sample.domain("vm1", uuids: [], live: [Sample.uuidA]))
        let changes = state.removeDomain(named: "vm1")
        #expect(changes.compactMap(\.device).map(\.inUseBy) == [[]])
        #expect(state == IndexState(devices: [device], parents: [], domains: []),
                "derived maps emptied, so the state equals one built without the domain")
    }

    @Test func incrementalAndBulkBuildsAgree() {
        let a = Sample.device(Sample.uuidA, active: true), b = Sample.device(Sample.uuidB)
        let domains = [Sample.domain("vm1", uuids: [Sample.uuidB], live: [Sample.uuidA]), Sample.domain("vm2", uuids: [Sample.uuidA])]
        // Devices first, then domains (the bulk init goes the other way), with detours on the way: a
        // device under the placeholder parent re-parented, a start and stop, a domain that comes and goes.
        var incremental = IndexState()
        let placeholder = Sample.definition(Sample.uuidB, parent: IndexState.placeholderParent, name: b.name)
        _ = incremental.upsertDevice(placeholder, flags: b.flags)
        _ = incremental.upsertDevice(a.definition, flags: Sample.flags(active: false))
        _ = incremental.upsertDomain(Sample.domain("gone", uuids: [Sample.uuidA], live: [Sample.uuidB]))
        _ = incremental.upsertDevice(b.definition, flags: b.flags)
        _ = incremental.upsertDevice(a.definition, flags: a.flags)
        _ = incremental.upsertDomain(Sample.domain("vm1", uuids: [], active: false))
        _ = incremental.removeDomain(named: "gone")
        for d in domains { _ = incremental.upsertDomain(d) }
        let bulk = IndexState(devices: [a, b], parents: [], domains: domains)
        #expect(incremental == bulk)
        #expect(bulk.devices[a.key]?.inUseBy == ["vm1"] && bulk.devices[a.key]?.domains == ["vm2"])
        #expect(bulk.inactiveDevices(onParent: Sample.gpu0).map(\.uuid) == [Sample.uuidB])
    }

    @Test func inactiveDevicesFollowStartAndStop() {
        var state = IndexState()
        let d = Sample.device(Sample.uuidA)
        _ = state.upsertDevice(d.definition, flags: d.flags)
        #expect(state.inactiveDevices(onParent: d.parent).map(\.uuid) == [Sample.uuidA])
        _ = state.upsertDevice(d.definition, flags: Sample.flags(active: true))
        #expect(state.inactiveDevices(onParent: d.parent).isEmpty)
        _ = state.upsertDevice(d.definition, flags: Sample.flags(active: false))
        _ = state.removeDevice(named: d.name)
        #expect(state.inactiveDevices(onParent: d.parent).isEmpty)
        #expect(state == IndexState())
    }
}
