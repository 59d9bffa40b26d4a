import Foundation
import Monitor
import Policy
import Synchronization
import TestSupport
import Testing

/// SIGKILL the real daemon while libvirt floods it with events: the state file must always be either
/// absent or a complete, decodable `PersistedState` (never half a file).
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct StateFileCrashTests {
    static let mdevctlDir = "/etc/mdevctl.d/\(LibvirtHost.pciParent.address)"

    /// The mdevctl definitions written so far, removed at the end whatever happens.
    final class Written: Sendable {
        private let paths = Mutex<[String]>([])
        func add(_ path: String) { paths.withLock { $0.append(path) } }
        var count: Int { paths.withLock { $0.count } }
        func removeAll() {
            for path in paths.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// Writes `count` mdevctl definitions directly, as `mdevctl define` would, a few ms apart.
    static func burst(_ count: Int, into written: Written) async {
        for _ in 0..<count {
            let path = "\(mdevctlDir)/\(LibvirtHost.newUUID())"
            written.add(path)
            let json = #"{"mdev_type": "nvidia-63", "start": "manual", "attrs": []}"#
            _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
            try? await Task.sleep(for: .milliseconds(3))
        }
    }

    @Test func stateFileSurvivesSIGKILLDuringABurst() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: mdevmonBinary), "build mdevmon first: \(mdevmonBinary)")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let stateDir = dir.path + "/state"
        try FileManager.default.createDirectory(atPath: Self.mdevctlDir, withIntermediateDirectories: true)
        let written = Written()
        defer { written.removeAll() }
        let store = StateStore(directory: stateDir)

        // Kill at different moments: during start-up, around the first sync and save, and mid-burst.
        let killAfter: [Duration] = [.milliseconds(40), .milliseconds(150), .milliseconds(300), .milliseconds(600), .milliseconds(1200)]
        var loaded = 0
        for (round, delay) in killAfter.enumerated() {
            let daemon = try TestDaemon(stateDir: stateDir)
            defer { daemon.stop() }
            let burst = Task { await Self.burst(40, into: written) }
            try await Task.sleep(for: delay)
            #expect(daemon.process.isRunning, "round \(round): the daemon exited early: \(daemon.stderr)")
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()
            #expect(daemon.process.terminationReason == .uncaughtSignal && daemon.process.terminationStatus == SIGKILL)
            await burst.value

            switch store.load() {
            case .missing:
                break
            case .loaded(let state):
                loaded += 1
                #expect(state.bootID == BootID.current(), "round \(round)")
            case .corrupt(let reason, let movedTo):
                Issue.record("round \(round): state file corrupt after SIGKILL: \(reason) (moved to \(movedTo ?? "-"))")
            case .newer(_, let v, _), .unsupported(let v, _, _):
                Issue.record("round \(round): state file of format \(v)")
            }
        }
        #expect(written.count == 200)

        // The last daemon must have got far enough to write at least once; if none did, the test proved nothing.
        if loaded == 0 {
            let daemon = try TestDaemon(stateDir: stateDir)
            defer { daemon.stop() }
            #expect(await eventually(timeout: .seconds(30)) { FileManager.default.fileExists(atPath: store.path) }, "the daemon never wrote its state file")
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()
            if case .loaded = store.load() {} else { Issue.record("state file unreadable after the final kill") }
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: stateDir)) ?? []
        #expect(!leftovers.contains { $0.contains(".corrupt-") }, "\(leftovers)")
    }
}
