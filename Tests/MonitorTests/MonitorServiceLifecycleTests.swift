import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
@testable import Monitor

/// `MonitorService` as a `Service`: it ends on graceful shutdown, and nothing waiting on it hangs shutdown.
@Suite struct MonitorServiceLifecycleTests {
    private static let logger = Logger(label: "mdevmon.test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func gracefulShutdownEndsTheServiceGroup() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let service = MonitorService(configuration: .test, connector: fake, logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: Self.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await service.waitForFirstSync()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(fake.openConnections == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func waitForFirstSyncReturnsWhenCancelledWhileLibvirtIsDown() async throws {
        let fake = FakeLibvirt()
        fake.goDown(reason: "Failed to connect socket: No such file or directory")
        try await withMonitor(fake) { h in
            await withTaskGroup(of: Void.self) { waiters in
                waiters.addTask { await h.service.waitForFirstSync() }
                waiters.addTask { await h.service.waitForFirstSync() }
                #expect(await eventually { fake.connectAttempts.count >= 2 })
                waiters.cancelAll()
                await waiters.waitForAll()
            }
            #expect(h.snapshot.status.synced == false)
            // A waiter already cancelled returns at once too.
            await withTaskGroup(of: Void.self) { waiters in
                waiters.cancelAll()
                waiters.addTask { await h.service.waitForFirstSync() }
                await waiters.waitForAll()
            }
        }
    }
}

/// A connect that blocks (libvirtd accepted but does not answer) must not hold up shutdown, and the
/// connection it returns later is closed, not leaked.
@Suite struct BlockedConnectTests {
    @Test func cancellationDoesNotWaitForABlockedConnect() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        fake.connectsPaused.store(true, ordering: .sequentiallyConsistent)
        let service = MonitorService(configuration: .test, connector: fake,
                                     logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let ended = Atomic(false)
        let run = Task {
            try? await service.run()
            ended.store(true, ordering: .sequentiallyConsistent)
        }
        #expect(await eventually { fake.blockedConnects.load(ordering: .sequentiallyConsistent) == 1 }, "the connect never blocked")
        run.cancel()
        #expect(await eventually { ended.load(ordering: .sequentiallyConsistent) }, "run() waited for the blocked connect")
        fake.connectsPaused.store(false, ordering: .sequentiallyConsistent)
        // The abandoned connect completes and its connection is closed at once.
        #expect(await eventually { fake.connectsSucceeded == 1 && fake.openConnections == 0 })
    }

    /// A remote URI: one notice at start-up names what needs libvirtd on this host; the index names the
    /// host each connection reached (a reconnect after the host's reboot brings its new boot).
    @Test func aRemoteURIIsAnnouncedOnceAndItsHostRecorded() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let host = WatchedHost(hostname: "kvmz01.example.com", boot: .estimated(bootTime: 1_800_000_000))
        fake.watchedHost.withLock { $0 = host }
        let log = LogCapture()
        var configuration = MonitorConfiguration.test
        configuration.uri = "qemu+tls://kvmz01.example.com/system"
        try await TestSupport.withMonitor(configuration, connector: fake, logger: log.logger) { service in
            await service.waitForFirstSync()
            #expect(service.index.snapshot.status.host == host)
            let reconnects = service.index.snapshot.status.reconnects
            let rebooted = WatchedHost(hostname: "kvmz01.example.com", boot: .estimated(bootTime: 1_800_003_600))
            fake.watchedHost.withLock { $0 = rebooted }
            fake.closeConnection(reason: "keepalive timed out")
            #expect(await eventually { service.index.snapshot.status.reconnects > reconnects && service.index.snapshot.status.synced })
            #expect(service.index.snapshot.status.host == rebooted)
        }
        let notices = log.records.filter { $0.message.hasPrefix("libvirt at qemu+tls://kvmz01.example.com/system is remote: ") }
        #expect(notices.count == 1)
        #expect(notices.first?.level == .notice)
    }
}
