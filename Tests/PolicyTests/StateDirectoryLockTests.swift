import Foundation
import Policy
import TestSupport
import Testing

/// One daemon per state directory: `flock` on `mdevmon.lock`, which names the holder's pid.
@Suite struct StateDirectoryLockTests {
    @Test func secondHolderIsRefusedNamingDirectoryAndPid() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let state = dir.path + "/state"
        var first: StateDirectoryLock? = try StateDirectoryLock(directory: state)
        #expect(first?.path == state + "/mdevmon.lock")
        #expect(try String(contentsOfFile: state + "/mdevmon.lock", encoding: .utf8) == "\(getpid())\n")
        let mode = try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? Int
        #expect(mode == 0o700, "created private, as the doctor asks")

        // flock is per open file: a second open in the same process is refused like another process.
        let error = #expect(throws: StateDirectoryLockError.self) { try StateDirectoryLock(directory: state) }
        #expect(error == .held(directory: state, lockFile: state + "/mdevmon.lock", pid: getpid()))
        #expect(error?.description == "state directory \(state) is in use by another mdevmon (pid \(getpid())), which holds \(state)/mdevmon.lock: two daemons must not share one state directory (give each its own --state.dir)")

        // Released when its holder goes (a process's exit closes it the same way).
        withExtendedLifetime(first) {}
        first = nil
        #expect(throws: Never.self) { _ = try StateDirectoryLock(directory: state) }
    }

    @Test func aDirectoryThatCannotHoldALockIsUnavailable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.path + "/plain-file"
        try Data().write(to: URL(fileURLWithPath: file))
        let error = #expect(throws: StateDirectoryLockError.self) { try StateDirectoryLock(directory: file + "/state") }
        guard case .unavailable(let directory, _)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(directory == file + "/state")
    }
}
