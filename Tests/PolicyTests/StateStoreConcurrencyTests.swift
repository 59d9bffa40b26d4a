import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// `StateStore.save` is called by one writer in the daemon, but must stay atomic even when two call it
/// at once by mistake: each write has its own temp file.
@Suite struct StateStoreConcurrencyTests {
    static func state(_ i: Int) -> PersistedState {
        PersistedState(bootID: "boot-\(i)", active: (0..<(1 + i % 50)).map { j in
            Sample.saved(String(format: "%08x-0000-4000-8000-%012x", i, j))
        })
    }

    @Test func concurrentSavesLeaveOneWholeFileAndNoTempFiles() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        let states = (0..<64).map(Self.state)
        let failures = await withTaskGroup(of: String?.self) { group in
            for state in states {
                group.addTask {
                    await Task.detached {
                        for _ in 0..<5 {
                            do { try store.save(state) } catch { return "\(error)" }
                        }
                        return nil
                    }.value
                }
            }
            return await group.reduce(into: [String]()) { if let f = $1 { $0.append(f) } }
        }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        guard case .loaded(let loaded) = store.load() else {
            Issue.record("state file unreadable after concurrent saves: \(store.load())")
            return
        }
        #expect(states.contains(loaded), "the file is none of the states written")
        #expect(dir.files == ["state.json"], "temp files left behind: \(dir.files)")
    }

    @Test func leftoverTempFilesOfAKilledWriterAreRemoved() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try store.save(Self.state(1))
        for name in ["state.json.tmp", "state.json.tmp-a1b2c3"] {
            #expect(FileManager.default.createFile(atPath: dir.path + "/" + name, contents: Data("{\"ver".utf8)))
        }
        store.removeLeftoverTempFiles()
        #expect(dir.files == ["state.json"])
        #expect(store.load() == .loaded(Self.state(1)))
    }
}
