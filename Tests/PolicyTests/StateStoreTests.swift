import Foundation
import Monitor
import Policy
import TestSupport
import Testing

@Suite struct StateStoreTests {
    static let state = PersistedState(bootID: "b0a1c2d3-0000-4000-8000-000000000001", active: [
        Sample.saved("ffffffff-0000-4000-8000-000000000002", attrs: [MdevAttr(name: "b", value: "2"), MdevAttr(name: "a", value: "1")]),
        Sample.saved("00000000-0000-4000-8000-000000000001", parent: Sample.otherParent, type: "i915-GVTg_V5_4", persistent: false),
    ])

    @Test func saveLoadRoundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        #expect(store.load() == .missing)
        try store.save(Self.state)
        #expect(store.load() == .loaded(Self.state))
        #expect(dir.files == ["state.json"], "no temp file may be left behind")

        // Overwriting replaces the content, still without leftovers.
        let next = PersistedState(bootID: "other", active: [])
        try store.save(next)
        #expect(store.load() == .loaded(next))
        #expect(dir.files == ["state.json"])
    }

    @Test func activeDevicesAreSortedByKey() {
        #expect(Self.state.active.map(\.uuid) == ["00000000-0000-4000-8000-000000000001", "ffffffff-0000-4000-8000-000000000002"])
    }

    @Test func fileUsesSnakeCaseKeysAndPrivateMode() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try store.save(Self.state)
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.contains("\"boot_id\" : \"b0a1c2d3-0000-4000-8000-000000000001\""))
        #expect(text.contains("\"mdev_type\" : \"nvidia-63\""))
        #expect(text.contains("\"version\" : 1"))
        let mode = try FileManager.default.attributesOfItem(atPath: store.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func readsAHandWrittenFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        let json = """
            {"version": 1, "boot_id": "abc", "active": [
              {"uuid": "u1", "parent": "pci_0000_3b_00_0", "mdev_type": "nvidia-63", "attrs": [{"name": "x", "value": "y"}], "persistent": true}
            ]}
            """
        try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
        let expected = PersistedState(bootID: "abc", active: [
            PersistedState.Device(uuid: "u1", parent: "pci_0000_3b_00_0", mdevType: "nvidia-63",
                                  attrs: [MdevAttr(name: "x", value: "y")], persistent: true)])
        #expect(store.load() == .loaded(expected))
    }

    @Test func createsTheDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path + "/nested/deeper")
        try store.save(Self.state)
        #expect(store.load() == .loaded(Self.state))
    }

    @Test(arguments: [
        ("garbage", "\u{1}\u{2}not json at all"),
        ("truncated", #"{"version": 1, "boot_id": "abc", "active": [{"uuid": "u1", "par"#),
        ("version zero", #"{"version": 0, "boot_id": "abc", "active": []}"#),
        ("no version", #"{"boot_id": "abc", "active": []}"#),
        ("missing field", #"{"version": 1, "active": []}"#),
        ("empty", ""),
    ])
    func corruptFileIsMovedAside(name: String, content: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try Data(content.utf8).write(to: URL(fileURLWithPath: store.path))

        guard case .corrupt(let reason, let movedTo) = store.load() else {
            Issue.record("\(name): expected .corrupt")
            return
        }
        #expect(!reason.isEmpty)
        if name == "version zero" { #expect(reason == "unknown version 0") }
        let aside = try #require(movedTo)
        #expect(aside.hasPrefix(store.path + ".corrupt-"))
        #expect(FileManager.default.contents(atPath: aside) == Data(content.utf8), "the bad file is kept for inspection")
        #expect(!FileManager.default.fileExists(atPath: store.path))
        #expect(store.load() == .missing)

        // A fresh save works after that.
        try store.save(Self.state)
        #expect(store.load() == .loaded(Self.state))
    }

    /// A file from a newer mdevmon (after a downgrade) whose known fields decode is read, and the
    /// original survives the first write of this version's format under a second name.
    @Test func newerVersionIsReadAndKept() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        let json = """
            {"version": 2, "boot_id": "abc", "written_by": "mdevmon 9", "active": [
              {"uuid": "u1", "parent": "p", "mdev_type": "t", "attrs": [], "persistent": true, "numa_node": 1}
            ], "pending": [], "quarantine": ["u2"]}
            """
        try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
        guard case .newer(let state, let version, let keptAt) = store.load() else {
            Issue.record("a newer file with known fields was not read: \(store.load())")
            return
        }
        #expect(version == 2 && state.bootID == "abc" && state.active.map(\.uuid) == ["u1"])
        #expect(keptAt == store.path + ".version-2")
        #expect(FileManager.default.contents(atPath: store.path) == Data(json.utf8), "read in place, not moved")
        // A restart before the first write finds it already kept: no second copy.
        guard case .newer(_, _, let again) = store.load() else { Issue.record("second load"); return }
        #expect(again == keptAt)
        #expect(dir.files == ["state.json", "state.json.version-2"])

        try store.save(Self.state)
        #expect(store.load() == .loaded(Self.state))
        #expect(FileManager.default.contents(atPath: store.path + ".version-2") == Data(json.utf8), "the original is not lost")
    }

    /// A newer file whose known fields changed shape cannot be read: it is moved aside under a name
    /// that says its format, byte for byte, never deleted.
    @Test func unreadableNewerVersionIsMovedAsideNotLost() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        let json = #"{"version": 3, "boot_id": "abc", "active": {"u1": {"parent": "p"}}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
        guard case .unsupported(let version, let reason, let movedTo) = store.load() else {
            Issue.record("expected .unsupported: \(store.load())")
            return
        }
        #expect(version == 3)
        #expect(reason.hasPrefix("active: "), "\(reason)")
        let aside = try #require(movedTo)
        #expect(aside.hasPrefix(store.path + ".version-3-"))
        #expect(FileManager.default.contents(atPath: aside) == Data(json.utf8))
        #expect(store.load() == .missing)

        // Two in the same second do not overwrite each other.
        try Data(json.utf8).write(to: URL(fileURLWithPath: store.path))
        guard case .unsupported(_, _, let second) = store.load() else { Issue.record("second load"); return }
        #expect(second != nil && second != aside)
        #expect(dir.files.filter { $0.hasPrefix("state.json.version-3-") }.count == 2)
    }

    @Test func bootIDIsReadAndTrimmed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/boot_id"
        try Data("0c0ffee0-1234-4567-89ab-cdef01234567\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(BootID.current(path: path) == "0c0ffee0-1234-4567-89ab-cdef01234567")
        #expect(BootID.current(path: dir.path + "/nope") == nil)
        try Data("\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(BootID.current(path: path) == nil)
        #expect(BootID.current() != nil)
    }
}

@Suite struct StateStoreCompatibilityTests {
    @Test func fileWithoutPendingListStillLoads() throws {
        let dir = NSTemporaryDirectory() + "state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let json = #"{"version": 1, "boot_id": "b", "active": [{"uuid": "u", "parent": "p", "mdev_type": "t", "attrs": [], "persistent": true}]}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/state.json"))
        guard case .loaded(let state) = StateStore(directory: dir).load() else {
            Issue.record("state without pending did not load")
            return
        }
        #expect(state.pending == [])
        #expect(state.active.map(\.uuid) == ["u"])
    }
}
