import Testing
@testable import Monitor

/// Devices and parents in `IndexState`: upsert and remove by libvirt name, keyed by (uuid, parent).
@Suite struct IndexStateDeviceTests {
    @Test func upsertAddsThenReportsNothingForTheSameValue() {
        var state = IndexState()
        let device = Sample.device(Sample.uuidA)
        #expect(state.upsertDevice(device.definition, flags: device.flags) == [.deviceAdded(device)])
        #expect(state.devices == [device.key: device])
        #expect(state.device(named: device.name) == device)
        #expect(state.upsertDevice(device.definition, flags: device.flags) == [])
    }

    /// `activeCount` is kept incrementally; after any sequence of upserts (flag flips, re-parenting by
    /// name) and removals it equals a scan.
    @Test func activeCountFollowsEveryMutation() {
        var state = IndexState()
        var rng = SystemRandomNumberGenerator()
        let uuids = [Sample.uuidA, Sample.uuidB, Sample.uuidC]
        for _ in 0..<2000 {
            let uuid = uuids.randomElement(using: &rng)!
            let parent = Bool.random(using: &rng) ? Sample.gpu0 : Sample.gpu1
            // Half the time under a fixed name, so the same name moves between parents.
            let name = Bool.random(using: &rng) ? "fixed-\(uuid)" : Sample.name(uuid, parent: parent)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0, 1:
                _ = state.upsertDevice(Sample.definition(uuid, parent: parent, name: name),
                                       flags: Sample.flags(active: Bool.random(using: &rng)))
            default:
                _ = state.removeDevice(named: name)
            }
            #expect(state.activeCount == state.devices.values.filter(\.active).count)
        }
        let rebuilt = IndexState(devices: Array(state.devices.values), parents: [], domains: [])
        #expect(rebuilt.activeCount == state.activeCount)
    }

    @Test func upsertWithNewFlagsReportsAChange() {
        var state = IndexState()
        let old = Sample.device(Sample.uuidA)
        _ = state.upsertDevice(old.definition, flags: old.flags)
        let new = Sample.device(Sample.uuidA, active: true)
        #expect(state.upsertDevice(new.definition, flags: new.flags) == [.deviceChanged(old: old, new: new)])
        #expect(state.device(named: new.name) == new)
    }

    @Test func removeByNameReportsTheOldDevice() {
        var state = IndexState()
        let device = Sample.device(Sample.uuidA)
        _ = state.upsertDevice(device.definition, flags: device.flags)
        #expect(state.removeDevice(named: device.name) == [.deviceRemoved(device)])
        #expect(state.devices.isEmpty)
        #expect(state.device(named: device.name) == nil)
        #expect(state.devices(uuid: Sample.uuidA) == [])
        #expect(state == IndexState())
    }

    @Test func removingAnUnknownNameChangesNothing() {
        var state = IndexState()
        let device = Sample.device(Sample.uuidA)
        _ = state.upsertDevice(device.definition, flags: device.flags)
        let before = state
        #expect(state.removeDevice(named: "mdev_nope") == [])
        #expect(state == before)
    }

    @Test func sameUUIDUnderTwoParentsIsTwoEntries() {
        var state = IndexState()
        let a = Sample.device(Sample.uuidA, parent: Sample.gpu0)
        let b = Sample.device(Sample.uuidA, parent: Sample.gpu1)
        #expect(state.upsertDevice(b.definition, flags: b.flags) == [.deviceAdded(b)])
        #expect(state.upsertDevice(a.definition, flags: a.flags) == [.deviceAdded(a)])
        #expect(state.devices.count == 2)
        #expect(state.devices(uuid: Sample.uuidA) == [a, b])
        #expect(state.device(named: a.name) == a)
        #expect(state.device(named: b.name) == b)

        #expect(state.removeDevice(named: a.name) == [.deviceRemoved(a)])
        #expect(state.devices(uuid: Sample.uuidA) == [b])
        #expect(state.device(named: b.name) == b)
    }

    @Test func aNameThatMovesToAnotherParentRetiresTheOldEntry() {
        var state = IndexState()
        let old = Sample.device(Sample.uuidA, parent: Sample.gpu0)
        _ = state.upsertDevice(old.definition, flags: old.flags)
        var definition = Sample.definition(Sample.uuidA, parent: Sample.gpu1, name: old.name)
        definition.parentAddress = "0000:00:03.0"
        let new = MdevDevice(definition: definition, flags: old.flags)
        #expect(state.upsertDevice(definition, flags: old.flags) == [.deviceRemoved(old), .deviceAdded(new)])
        #expect(state.devices == [new.key: new])
        #expect(state.device(named: old.name) == new)
    }

    @Test func aKeyReportedUnderANewNameDropsTheOldName() {
        var state = IndexState()
        let old = Sample.device(Sample.uuidA)
        _ = state.upsertDevice(old.definition, flags: old.flags)
        let renamed = Sample.definition(Sample.uuidA, name: "mdev_renamed")
        let new = MdevDevice(definition: renamed, flags: old.flags)
        #expect(state.upsertDevice(renamed, flags: old.flags) == [.deviceChanged(old: old, new: new)])
        #expect(state.device(named: old.name) == nil)
        #expect(state.device(named: "mdev_renamed") == new)
    }

    @Test func parentsAreAddedChangedAndRemovedByName() {
        var state = IndexState()
        let parent = Sample.parentDevice(available: 2)
        #expect(state.upsertParent(parent) == [.parentAdded(parent)])
        #expect(state.upsertParent(parent) == [])
        let fewer = Sample.parentDevice(available: 1)
        #expect(state.upsertParent(fewer) == [.parentChanged(old: parent, new: fewer)])
        #expect(state.parents == [Sample.gpu0: fewer])
        #expect(state.removeParent(named: Sample.gpu0) == [.parentRemoved(fewer)])
        #expect(state.removeParent(named: Sample.gpu0) == [])
        #expect(state.parents.isEmpty)
    }
}
