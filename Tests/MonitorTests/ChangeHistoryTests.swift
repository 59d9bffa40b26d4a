import Testing
@testable import Monitor

/// The index's record of which keys each mutation touched (read by the exporter's cache).
@Suite struct ChangeHistoryTests {
    @Test func unionOfTheMutationsInTheRange() {
        let history = ChangeHistory(capacity: 4)
        let a = Sample.device(Sample.uuidA), b = Sample.device(Sample.uuidB)
        history.record(generation: 1, [.deviceAdded(a)])
        history.record(generation: 2, [.deviceChanged(old: b, new: b), .domainAdded(Sample.domain("vm1", uuids: []))])
        history.record(generation: 3, [.parentAdded(Sample.parentDevice()), .connection(.synced)])
        #expect(history.touched(after: 0, through: 3) == .init(devices: [a.key, b.key], domains: ["vm1"]))
        #expect(history.touched(after: 1, through: 2) == .init(devices: [b.key], domains: ["vm1"]))
        #expect(history.touched(after: 2, through: 3) == .init())
        #expect(history.touched(after: 3, through: 3) == .init(), "nothing happened")
        #expect(history.touched(after: 3, through: 4) == nil, "not recorded yet")
        #expect(history.touched(after: 3, through: 2) == nil)
    }

    @Test func forgetsBeyondItsCapacity() {
        let history = ChangeHistory(capacity: 3)
        let keys = (1...5).map { Sample.device(String(format: "00000000-0000-4000-8000-%012d", $0)) }
        for (i, d) in keys.enumerated() { history.record(generation: i + 1, [.deviceAdded(d)]) }
        // Generations 3…5 are kept: a reader at 2 still learns everything after it, a reader at 1 does not.
        #expect(history.touched(after: 2, through: 5)?.devices == Set(keys[2...].map(\.key)))
        #expect(history.touched(after: 3, through: 4)?.devices == [keys[3].key])
        #expect(history.touched(after: 1, through: 5) == nil)
    }

    @Test func boundedByKeysToo() {
        let history = ChangeHistory(capacity: 100, maxKeys: 3)
        let d = (1...5).map { Sample.device(String(format: "00000000-0000-4000-8000-%012d", $0)) }
        history.record(generation: 1, [.deviceAdded(d[0])])
        history.record(generation: 2, [.deviceAdded(d[1]), .deviceAdded(d[2])])
        #expect(history.touched(after: 0, through: 2)?.devices == Set(d[0...2].map(\.key)))
        // Two more keys push the first mutation out.
        history.record(generation: 3, [.deviceAdded(d[3])])
        #expect(history.touched(after: 0, through: 3) == nil)
        #expect(history.touched(after: 1, through: 3)?.devices == Set(d[1...3].map(\.key)))
        // A mutation larger than the whole history is remembered as "too large": readers across it fall back.
        history.record(generation: 4, d.map { .deviceAdded($0) })
        #expect(history.touched(after: 3, through: 4) == nil)
        history.record(generation: 5, [.deviceAdded(d[4])])
        #expect(history.touched(after: 4, through: 5)?.devices == [d[4].key])
    }

    @Test func aReparentedDeviceTouchesBothKeys() {
        let history = ChangeHistory()
        let old = Sample.device(Sample.uuidA, parent: IndexState.placeholderParent), new = Sample.device(Sample.uuidA)
        history.record(generation: 1, [.deviceChanged(old: old, new: new)])
        #expect(history.touched(after: 0, through: 1)?.devices == [old.key, new.key])
    }

    @Test func theIndexCountsOnlyMutationsThatChangedSomething() async {
        let index = DeviceIndex(uri: "test:///")
        #expect(index.snapshot.generation == 0)
        let d = Sample.device(Sample.uuidA)
        await index.mutate { $0.upsertDevice(d.definition, flags: d.flags) }
        #expect(index.snapshot.generation == 1)
        await index.mutate { $0.upsertDevice(d.definition, flags: d.flags) }  // the same again: no change
        await index.markDisconnected(reason: "test")
        #expect(index.snapshot.generation == 1)
        await index.mutate { $0.removeDevice(named: d.name) }
        #expect(index.snapshot.generation == 2)
        #expect(index.snapshot.history?.touched(after: 0, through: 2)?.devices == [d.key])
    }
}
