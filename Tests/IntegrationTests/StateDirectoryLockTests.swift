import Foundation
import TestSupport
import Testing

/// Two real daemons on one `--state.dir`: the second refuses to start, naming the directory and the
/// first one's pid, with a non-zero exit; the first keeps running, and its exit frees the directory.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct StateDirectoryLockIntegrationTests {
    @Test func secondDaemonOnTheSameStateDirectoryExitsNonZero() async throws {
        let stateDir = try TemporaryDirectory()
        defer { stateDir.remove() }
        let first = try TestDaemon(stateDir: stateDir.path)
        defer { first.stop() }
        #expect(await first.waitUntilSynced(), "first daemon never synced: \(first.stderrTail)")

        let second = try TestDaemon(stateDir: stateDir.path)
        defer { second.stop() }
        let exited = await eventually(timeout: .seconds(30)) { !second.process.isRunning }
        try #require(exited, "the second daemon is still running: \(second.stderrTail)")
        #expect(second.process.terminationReason == .exit && second.process.terminationStatus != 0)
        let expected = "state directory \(stateDir.path) is in use by another mdevmon (pid \(first.pid)), which holds \(stateDir.path)/mdevmon.lock"
        #expect(second.stderr.contains(expected), "\(second.stderrTail)")
        #expect(first.process.isRunning && first.metrics() != nil, "the first daemon must be unaffected")

        // The lock goes with its process: a daemon started after the first stopped gets the directory.
        first.stop()
        let third = try TestDaemon(stateDir: stateDir.path)
        defer { third.stop() }
        #expect(await third.waitUntilSynced(), "a daemon after the first's exit did not start: \(third.stderrTail)")
    }
}
