import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import Systemd

extension ProcessGlobalState {
    /// These set `NOTIFY_SOCKET`/`WATCHDOG_*`, which libsystemd reads from the process environment.
    @Suite struct NotifyServiceTests {
        /// A notify socket plus the messages it received so far, with the watchdog pings counted apart.
        final class FakeServiceManager {
            let directory: TemporaryDirectory
            let listener: DatagramListener
            private(set) var messages: [String] = []

            init() throws {
                directory = try TemporaryDirectory()
                listener = try DatagramListener(path: directory.path + "/notify")
            }

            deinit { directory.remove() }

            var environment: [String: String?] {
                ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]
            }

            func poll() -> [String] {
                messages += listener.drain()
                return messages
            }

            func waitFor(_ message: String, within timeout: Duration = .seconds(3)) async -> Bool {
                await eventually(within: timeout) { poll().contains(message) }
            }

            var nonWatchdogMessages: [String] { poll().filter { $0 != "WATCHDOG=1" } }
            var watchdogPings: Int { poll().filter { $0 == "WATCHDOG=1" }.count }
        }

        let logger = Logger(label: "notify-test") { _ in SwiftLogNoOpLogHandler() }

        /// Runs `service` in a `ServiceGroup`, hands `body` a way to shut it down gracefully, and waits for the
        /// service to return.
        func running(
            _ service: NotifyService, _ body: (_ shutdown: @Sendable () async -> Void) async throws -> Void
        ) async throws {
            let group = ServiceGroup(
                configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await body { await group.triggerGracefulShutdown() }
                try await tasks.waitForAll()
            }
        }

        @Test func readyStatusWatchdogStopping() async throws {
            let manager = try FakeServiceManager()
            var environment = manager.environment
            environment["WATCHDOG_USEC"] = "200000"
            environment["WATCHDOG_PID"] = "\(getpid())"
            try await withEnvironment(environment) {
                #expect(SystemdNotifier().watchdogTimeout() == .milliseconds(200))
                let service = NotifyService(logger: logger)
                try await running(service) { shutdown in
                    await service.updateStatus("syncing")
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(manager.poll().isEmpty, "nothing, not even a watchdog ping, before readiness")

                    await service.ready(status: "watching 0 devices")
                    #expect(await manager.waitFor("READY=1\nSTATUS=watching 0 devices"))
                    #expect(await manager.waitFor("WATCHDOG=1"))
                    #expect(await eventually { manager.watchdogPings >= 3 })

                    await service.updateStatus("watching 3\ndevices")
                    await service.updateStatus("watching 3 devices")  // unchanged: not sent again
                    await service.ready(status: "watching 3 devices")  // already ready: only a status update
                    await shutdown()
                }
                _ = manager.poll()
                #expect(
                    manager.nonWatchdogMessages == [
                        "READY=1\nSTATUS=watching 0 devices", "STATUS=watching 3 devices", "STOPPING=1",
                    ])
            }
        }

        @Test func noPingsWhileUnhealthy() async throws {
            let manager = try FakeServiceManager()
            var environment = manager.environment
            environment["WATCHDOG_USEC"] = "200000"
            let healthy = Atomic<Bool>(false)
            try await withEnvironment(environment) {
                let service = NotifyService(logger: logger) { healthy.load(ordering: .relaxed) }
                try await running(service) { shutdown in
                    await service.ready()
                    #expect(await manager.waitFor("READY=1"))
                    try await Task.sleep(for: .milliseconds(600))  // six ping intervals
                    #expect(manager.watchdogPings == 0)

                    healthy.store(true, ordering: .relaxed)
                    #expect(await manager.waitFor("WATCHDOG=1"))

                    healthy.store(false, ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(150))  // let a ping already in flight land
                    let pings = manager.watchdogPings
                    try await Task.sleep(for: .milliseconds(400))
                    #expect(manager.watchdogPings == pings)
                    await shutdown()
                }
                #expect(await manager.waitFor("STOPPING=1"))
            }
        }

        @Test func noWatchdogWithoutWatchdogUsec() async throws {
            let manager = try FakeServiceManager()
            try await withEnvironment(manager.environment) {
                #expect(SystemdNotifier().watchdogTimeout() == nil)
                let service = NotifyService(logger: logger)
                try await running(service) { shutdown in
                    await service.ready(status: "up")
                    try await Task.sleep(for: .milliseconds(300))
                    await shutdown()
                }
                #expect(manager.poll() == ["READY=1\nSTATUS=up", "STOPPING=1"])
            }
        }

        @Test func watchdogMeantForAnotherProcessIsIgnored() async throws {
            let manager = try FakeServiceManager()
            var environment = manager.environment
            environment["WATCHDOG_USEC"] = "200000"
            environment["WATCHDOG_PID"] = "\(getpid() + 1)"
            try await withEnvironment(environment) {
                #expect(SystemdNotifier().watchdogTimeout() == nil)
            }
        }

        @Test func shutdownBeforeReadinessOnlySaysStopping() async throws {
            let manager = try FakeServiceManager()
            try await withEnvironment(manager.environment) {
                let service = NotifyService(logger: logger)
                try await running(service) { shutdown in
                    try await Task.sleep(for: .milliseconds(100))
                    await shutdown()
                }
                #expect(manager.poll() == ["STOPPING=1"])
            }
        }

        @Test func reloadSendsReloadingThenReadyAgain() async throws {
            let manager = try FakeServiceManager()
            try await withEnvironment(manager.environment) {
                let service = NotifyService(logger: logger)
                await service.ready(status: "up")
                await service.reloading(status: "reloading configuration")
                await service.ready(status: "up again")
                #expect(
                    manager.poll() == [
                        "READY=1\nSTATUS=up", "RELOADING=1\nSTATUS=reloading configuration", "READY=1\nSTATUS=up again",
                    ])
            }
        }

        @Test func withoutNotifySocketEverythingIsANoOp() async throws {
            try await withEnvironment(["NOTIFY_SOCKET": nil]) {
                #expect(!SystemdNotifier().isEnabled)
                #expect(try SystemdNotifier().notify("READY=1") == false)
                let service = NotifyService(logger: logger)
                try await running(service) { shutdown in
                    await service.ready(status: "up")
                    await shutdown()
                }
            }
        }

        @Test func sendFailureIsReportedAsSystemdError() async throws {
            // A path that is not a socket makes sd_notify fail rather than no-op.
            try await withEnvironment(["NOTIFY_SOCKET": "/nonexistent/notify"]) {
                #expect(throws: SystemdError.self) { try SystemdNotifier().notify("READY=1") }
            }
        }
    }
}
