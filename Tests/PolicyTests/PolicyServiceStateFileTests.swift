import Foundation
import Logging
import Monitor
@testable import Policy
import TestSupport
import Testing

/// The state file follows the active set, coalesced, and survives a corrupt predecessor.
@Suite struct PolicyServiceStateFileTests {
    static func activate(_ uuid: String, _ active: Bool = true, persistent: Bool = true) -> (inout IndexState) -> [IndexChange] {
        { $0.upsertDevice(Sample.definition(uuid), flags: DeviceFlags(active: active, persistent: persistent, autostart: false)) }
    }

    @Test func writtenAfterFirstSyncAndOnEveryActiveSetChange() async throws {
        let a = Sample.uuid(), b = Sample.uuid()
        try await PolicyHarness.run(initial: .with([Sample.device(a, active: true), Sample.device(b)])) { h in
            #expect(await eventually { h.saved?.active.map(\.uuid) == [a] })
            #expect(h.saved?.bootID == PolicyHarness.bootID)
            #expect(h.saved?.active.first == Sample.saved(a))

            await h.index.mutate(Self.activate(b))
            #expect(await eventually { h.saved?.active.map(\.uuid) == [a, b].sorted() }, "start not saved")

            await h.index.mutate { $0.removeDevice(named: Sample.name(a)) }
            #expect(await eventually { h.saved?.active.map(\.uuid) == [b] }, "removal not saved")

            await h.index.mutate(Self.activate(b, false))
            #expect(await eventually { h.saved?.active == [] }, "stop not saved")

            // A transient device started counts too, with its kind recorded.
            let t = Sample.uuid()
            await h.index.mutate { $0.upsertDevice(Sample.definition(t, attrs: [MdevAttr(name: "x", value: "1")]),
                                                   flags: DeviceFlags(active: true, persistent: false, autostart: false)) }
            #expect(await eventually { h.saved?.active == [Sample.saved(t, persistent: false, attrs: [MdevAttr(name: "x", value: "1")])] })
            // It lists the host's devices and is root's business: a regular file, private to its owner.
            let attributes = try FileManager.default.attributesOfItem(atPath: h.store.path)
            #expect(attributes[.type] as? FileAttributeType == .typeRegular)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let files = try FileManager.default.contentsOfDirectory(atPath: h.store.directory)
            #expect(files == ["state.json"], "no temp file left behind")
        }
    }

    @Test func burstsAreCoalesced() async throws {
        let uuids = (0..<50).map { _ in Sample.uuid() }
        try await PolicyHarness.run(initial: .with([], parents: [Sample.parent]), saveDelay: .milliseconds(500)) { h in
            #expect(await eventually { h.saved?.active == [] })
            let before = try FileManager.default.attributesOfItem(atPath: h.store.path)[.systemFileNumber] as? Int
            for u in uuids { await h.index.mutate(Self.activate(u)) }
            // Still the old file: the saver waits saveDelay after the first change of a burst.
            #expect(h.saved?.active == [])
            #expect(await eventually { h.saved?.active.count == 50 }, "burst never saved")
            #expect(h.saved?.active.map(\.uuid) == uuids.sorted())
            let after = try FileManager.default.attributesOfItem(atPath: h.store.path)[.systemFileNumber] as? Int
            #expect(before != after, "the file is replaced by rename, not rewritten in place")
        }
    }

    @Test func corruptStateFileIsMovedAsideWithAWarning() async throws {
        let a = Sample.uuid()
        try await PolicyHarness.run(initial: .with([Sample.device(a, active: true)]),
                                    stateFile: "{\"version\": 1, \"boot_id\": ") { h in
            #expect(await eventually { h.log.records.contains { $0.level == .warning && $0.message.contains("unreadable") } })
            let warning = try #require(h.log.records.first { $0.level == .warning })
            #expect(warning.message.contains(h.store.path + ".corrupt-"))
            #expect(await eventually {
                if case .loaded(let s) = h.store.load() { return s.active.map(\.uuid) == [a] }
                return false
            }, "a fresh state file is written")
            #expect(try FileManager.default.contentsOfDirectory(atPath: h.store.directory).contains { $0.hasPrefix("state.json.corrupt-") })
            #expect(h.actions.calls.isEmpty)
        }
    }

    /// After a downgrade the previous boot's state file is a newer format: its active devices are
    /// still restored, the operator is told, and the original file is kept.
    @Test func newerStateFileStillRestoresWithAWarning() async throws {
        let a = Sample.uuid()
        let json = """
            {"version": 2, "boot_id": "previous-boot", "future_field": true, "active": [
              {"uuid": "\(a)", "parent": "\(Sample.parent)", "mdev_type": "\(Sample.type)", "attrs": [], "persistent": true}
            ]}
            """
        try await PolicyHarness.run(initial: .with([Sample.device(a)]), stateFile: json) { h in
            #expect(await eventually { h.actions.startCalls == [Sample.name(a)] }, "the newer file's device was not restored")
            let warning = try #require(h.log.records.first { $0.level == .warning && $0.message.contains("newer mdevmon") })
            #expect(warning.message == "state file \(h.store.path) is format 2, from a newer mdevmon (this one reads and writes 1): using the fields this version knows; the original is kept at \(h.store.path).version-2")
            #expect(await eventually { if case .loaded = h.store.load() { true } else { false } }, "this version's file is written")
            #expect(FileManager.default.contents(atPath: h.store.path + ".version-2") == Data(json.utf8))
        }
    }

    @Test(arguments: [
        (IndexChange.deviceAdded(Sample.device("u", active: true)), true),
        (.deviceAdded(Sample.device("u")), false),
        (.deviceRemoved(Sample.device("u", active: true)), true),
        (.deviceRemoved(Sample.device("u")), false),
        (.deviceChanged(old: Sample.device("u"), new: Sample.device("u", active: true)), true),
        (.deviceChanged(old: Sample.device("u", active: true), new: Sample.device("u")), true),
        (.deviceChanged(old: Sample.device("u"), new: Sample.device("u", autostart: true)), false),
        (.deviceChanged(old: Sample.device("u", active: true), new: Sample.device("u", active: true, persistent: false)), true),
        (.deviceChanged(old: Sample.device("u", active: true), new: Sample.device("u", active: true, attrs: [MdevAttr(name: "a", value: "1")])), true),
        (.deviceChanged(old: Sample.device("u", active: true), new: Sample.device("u", active: true, autostart: true)), false),
        (.parentAdded(Sample.parentDevice()), false),
        (.domainAdded(Sample.domain("vm", uuids: ["u"])), false),
        (.connection(.synced), true),
        (.connection(.disconnected(reason: "x")), false),
    ])
    func whichChangesAffectTheActiveSet(change: IndexChange, affects: Bool) {
        #expect(PolicyService.affectsActiveSet(change) == affects)
    }
}
