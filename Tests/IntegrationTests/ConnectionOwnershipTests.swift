import Foundation
import Logging
@testable import Monitor
import Synchronization
import TestSupport
import Testing

/// The Monitor owns its libvirt connection: closing one leaves nothing of it behind, neither its
/// libvirtd client nor the sinks its callbacks hold, and a borrower's lease outlives a close safely.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct ConnectionOwnershipTests {
    struct ForcedSyncFailure: Error, CustomStringConvertible {
        var description: String { "forced sync failure (test seam)" }
    }

    /// Sinks one registered connection holds: the close callback, two node-device callbacks and four domain
    /// callbacks (lifecycle, device added, removed, removal failed).
    static let sinksPerConnection = 7

    /// A connection for one read (`list`, `doctor`, the host checks' probe) registers no callback and
    /// watches no directory, and reads like any other.
    @Test func oneShotConnectionRegistersNothing() throws {
        let sinksBefore = EventSink.live.load(ordering: .relaxed)
        let connection = try LibvirtConnectorImpl.connectOnce(uri: LibvirtHost.uri, readOnly: true)
        defer { connection.close() }
        #expect(EventSink.live.load(ordering: .relaxed) == sinksBefore, "a one-shot connection holds callback sinks")
        let client = try #require(connection as? LibvirtClient)
        #expect(!client.watchesConfigDirectory)
        #expect(client.version != .unknown)
        _ = try FullSync.read(from: connection)
    }

    /// 200 connections closed while alive on the failed-sync path, then one that stays: libvirtd holds
    /// exactly one client of this process, and only that connection's sinks are alive.
    @Test func twoHundredClosedConnectionsLeaveOneClient() async throws {
        let pid = getpid()
        // Warm up libvirt's process-wide state (event loop, its wakeup pipe) before counting fds.
        try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: true).close()
        let sinksBefore = EventSink.live.load(ordering: .relaxed)
        let fdsBefore = ProcessResources.openFDs()
        let targetsBefore = ProcessResources.fdTargets()
        let cycles = 200
        let fdsAt = Mutex<[Int: Int]>([:])
        let attempts = Atomic(0)
        var logger = Logger(label: "test.ownership")
        logger.logLevel = .critical
        let monitor = MonitorService(
            configuration: MonitorConfiguration(uri: LibvirtHost.uri, readOnly: true,
                                                initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(1)),
            connector: LibvirtConnectorImpl(), index: nil, logger: logger,
            afterConnect: { _ in
                let n = attempts.add(1, ordering: .relaxed).newValue
                // fds with one connection open, early and at the end, for the report. Not compared: a closed
                // connection's socket and inotify watch are closed by libvirt's event loop on its next turn,
                // which a 1 ms reconnect storm outruns (seen: 45 at cycle 20, 65 at 200, all gone after).
                if n == 20 || n == cycles { fdsAt.withLock { $0[n] = ProcessResources.openFDs() } }
                if n <= cycles { throw ForcedSyncFailure() }
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await monitor.run() }
            await monitor.waitForFirstSync()
            #expect(attempts.load(ordering: .relaxed) == cycles + 1)
            #expect(await eventually { ProcessResources.libvirtdClients(of: pid) == 1 },
                    "libvirtd clients of this process: \(ProcessResources.libvirtdClients(of: pid).map(String.init) ?? "?")")
            #expect(await eventually { EventSink.live.load(ordering: .relaxed) == sinksBefore + Self.sinksPerConnection },
                    "event sinks alive: \(EventSink.live.load(ordering: .relaxed) - sinksBefore)")
            // Every closed connection's watch is released: only the live connection's is left.
            #expect(await eventually { ProcessResources.inotifyFDs() == 1 }, "inotify fds: \(ProcessResources.inotifyFDs())")
            // Once the loop caught up, one connection's worth is left: a leak of one fd a cycle would be 200.
            #expect(await eventually { ProcessResources.openFDs() - fdsBefore <= 8 },
                    "fds \(fdsBefore) → \(ProcessResources.openFDs()); new: \(Self.added(targetsBefore, ProcessResources.fdTargets()))")
            let fdsAfter = ProcessResources.openFDs()
            let early = fdsAt.withLock { $0[20] } ?? 0, late = fdsAt.withLock { $0[cycles] } ?? 0
            print("ownership: \(cycles) closed connections; libvirtd clients of this process \(ProcessResources.libvirtdClients(of: pid).map(String.init) ?? "?"); fds \(early) at cycle 20, \(late) at cycle \(cycles), \(fdsBefore) before → \(fdsAfter) synced")
            group.cancelAll()
            try await group.waitForAll()
        }
        // The monitor stopped: its last connection is gone too.
        #expect(await eventually { ProcessResources.libvirtdClients(of: pid) == 0 })
        #expect(await eventually { EventSink.live.load(ordering: .relaxed) == sinksBefore })
    }

    /// What `after` has that `before` had not (as multisets).
    static func added(_ before: [String], _ after: [String]) -> [String] {
        var rest = after
        for b in before { if let i = rest.firstIndex(of: b) { rest.remove(at: i) } }
        return rest
    }

    /// A borrower holds a lease while the owner closes: the call completes on a valid connection, and
    /// the connection (and its client) goes away when the lease ends.
    @Test func aLeaseOutlivesTheOwnersClose() async throws {
        let pid = getpid()
        let clientsBefore = ProcessResources.libvirtdClients(of: pid) ?? 0
        let connection = try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: true)
        let client = try #require(connection as? LibvirtClient)
        let inLease = DispatchSemaphore(value: 0), closed = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Int, any Error>?>(nil)
        // The borrower is a plain thread (as a policy action runs on the blocking queue), not a pool task.
        Thread {
            let result = Result {
                try connection.withLease { () throws -> Int in
                    inLease.signal()
                    closed.wait()
                    // The owner has closed; the lease keeps the connection valid for this call.
                    return try connection.listNodeDevices(.mdevParents).count
                }
            }
            outcome.withLock { $0 = result }
            done.signal()
        }.start()
        inLease.wait()
        #expect(client.leasesHeld == 1)
        connection.close()
        closed.signal()
        done.wait()
        // The check: the borrowed call succeeded on the connection its owner had closed meanwhile.
        _ = try #require(outcome.withLock { $0 }).get()
        #expect(client.leasesHeld == 0)
        // Closed and no lease left: a new borrower is refused, and libvirtd no longer has the client.
        #expect(throws: MonitorError.self) { try connection.withLease { 0 } }
        #expect(await eventually { ProcessResources.libvirtdClients(of: pid) == clientsBefore })
    }
}
