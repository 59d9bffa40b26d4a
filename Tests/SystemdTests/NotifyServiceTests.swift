import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import Systemd

/// NotifyService's behaviour, with a notifier that records instead of sending: no environment variables, so
/// these run in parallel with everything else. `SystemdNotifierTests` covers the real `sd_notify` path.
@Suite struct NotifyServiceTests {
    /// Stands in for systemd: records every notification in order, in one timeline with each health check the
    /// service makes and each line it logs, so a test can see what followed what.
    final class FakeServiceManager: Sendable {
        private let received = Mutex<[String]>([])
        private let failing: Bool
        /// What `healthCheck` answers.
        let healthy = Atomic<Bool>(true)

        init(failing: Bool = false, healthy: Bool = true) {
            self.failing = failing
            self.healthy.store(healthy, ordering: .sequentiallyConsistent)
        }

        func notifier(watchdog: Duration?) -> SystemdNotifier {
            SystemdNotifier(
                send: { [self] (state: String) throws(SystemdError) -> Bool in
                    if failing {
                        record("failed")
                        throw SystemdError(operation: "sd_notify", errno: 111)
                    }
                    record(state)
                    return true
                },
                watchdogTimeout: { watchdog })
        }

        /// A health check that answers `healthy` and records each answer as `check:pass` or `check:fail`.
        var healthCheck: @Sendable () -> Bool {
            { [self] in
                let answer = healthy.load(ordering: .sequentiallyConsistent)
                record(answer ? "check:pass" : "check:fail")
                return answer
            }
        }

        /// A logger whose lines join the timeline (prefixed `log:`).
        func logger(level: Logger.Level = .trace) -> Logger {
            var handler = StderrLogHandler(label: "notify-test", level: level, metadataProvider: nil)
            handler.output = { [self] in record("log:" + $0) }
            return Logger(label: "notify-test") { _ in handler }
        }

        @Sendable func record(_ entry: String) { received.withLock { $0.append(entry) } }

        /// Notifications, health checks, log lines and failed sends, in the order they happened.
        var timeline: [String] { received.withLock { $0 } }
        /// What systemd received.
        var messages: [String] { timeline.filter { !$0.hasPrefix("check:") && !$0.hasPrefix("log:") && $0 != "failed" } }
        var nonWatchdogMessages: [String] { messages.filter { $0 != "WATCHDOG=1" } }
        var watchdogPings: Int { messages.filter { $0 == "WATCHDOG=1" }.count }
        var failedSends: Int { timeline.filter { $0 == "failed" }.count }
        var logLines: [String] { timeline.filter { $0.hasPrefix("log:") } }

        /// Timeline entries after the last one matching `predicate` (all of them if none matches).
        func after(last predicate: (String) -> Bool) -> ArraySlice<String> {
            let all = timeline
            guard let i = all.lastIndex(where: predicate) else { return all[...] }
            return all[(i + 1)...]
        }
    }

    static let silent = Logger(label: "notify-test") { _ in SwiftLogNoOpLogHandler() }

    /// Runs `service` in a `ServiceGroup`, hands `body` a way to shut it down gracefully, and waits for the
    /// service to return.
    func running(
        _ service: NotifyService, _ body: (_ shutdown: @Sendable () async -> Void) async throws -> Void
    ) async throws {
        let group = ServiceGroup(
            configuration: .init(services: [service], gracefulShutdownSignals: [], logger: Self.silent))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body { await group.triggerGracefulShutdown() }
            try await tasks.waitForAll()
        }
    }

    @Test func readyStatusWatchdogStopping() async throws {
        let manager = FakeServiceManager()
        let service = NotifyService(notifier: manager.notifier(watchdog: .milliseconds(200)), logger: manager.logger())
        try await running(service) { shutdown in
            await service.updateStatus("syncing")
            // The service runs and waits for readiness; whatever it sent meanwhile would come before READY=1.
            #expect(await eventually { manager.logLines.contains { $0.contains("waiting for readiness") } })
            await service.ready(status: "watching 0 devices")
            #expect(manager.messages.first == "READY=1\nSTATUS=watching 0 devices", "nothing, not even a ping, before readiness")
            #expect(await eventually { manager.watchdogPings >= 3 }, "a ping every 100 ms")

            await service.updateStatus("watching 2 devices")
            await service.updateStatus("watching 2 devices")  // unchanged: not sent again
            await service.updateStatus("watching 3\ndevices")  // newlines would start a new assignment
            await service.ready(status: "watching 3 devices")  // already ready: only a status update
            await service.ready(status: "watching 4 devices")
            await shutdown()
        }
        #expect(
            manager.nonWatchdogMessages == [
                "READY=1\nSTATUS=watching 0 devices", "STATUS=watching 2 devices", "STATUS=watching 3 devices",
                "STATUS=watching 4 devices", "STOPPING=1",
            ])
        #expect(manager.messages.last == "STOPPING=1")
    }

    @Test func noPingsWhileUnhealthy() async throws {
        let manager = FakeServiceManager(healthy: false)
        let service = NotifyService(
            notifier: manager.notifier(watchdog: .milliseconds(200)), logger: Self.silent,
            healthCheck: manager.healthCheck)
        try await running(service) { shutdown in
            await service.ready()
            // Six ping intervals, each seen as a failed check: none of them pinged.
            #expect(await eventually { manager.timeline.filter { $0 == "check:fail" }.count >= 6 })
            #expect(manager.messages == ["READY=1"])

            manager.healthy.store(true, ordering: .sequentiallyConsistent)
            #expect(await eventually { manager.watchdogPings > 0 })

            manager.healthy.store(false, ordering: .sequentiallyConsistent)
            // A check that passed just before the switch may still ping once; after it, four checks that
            // failed and nothing else.
            #expect(await eventually { manager.after { $0 == "check:pass" }.filter { $0 == "check:fail" }.count >= 4 })
            let tail = manager.after { $0 == "check:pass" }
            #expect(Array(tail.drop { $0 == "WATCHDOG=1" }.prefix(4)) == Array(repeating: "check:fail", count: 4),
                    "\(tail)")
            #expect(manager.timeline.indices.allSatisfy { i in
                manager.timeline[i] != "WATCHDOG=1" || (i > 0 && manager.timeline[i - 1] == "check:pass")
            }, "every ping follows a passing check: \(manager.timeline)")
            await shutdown()
        }
        #expect(manager.messages.last == "STOPPING=1")
    }

    /// Once the service pings, every check is in the timeline, so "once per episode" is counted over checks
    /// that are known to have happened, not over a sleep.
    @Test func unhealthyEpisodesWarnOncePerEpisode() async throws {
        let manager = FakeServiceManager(healthy: false)
        let service = NotifyService(
            notifier: manager.notifier(watchdog: .milliseconds(100)), logger: manager.logger(),
            healthCheck: manager.healthCheck)
        func isWarning(_ entry: String) -> Bool {
            entry.hasPrefix("log:") && entry.contains("level=warning") && entry.contains("health check failed")
        }
        func isRecovery(_ entry: String) -> Bool {
            entry.hasPrefix("log:") && entry.contains("level=notice") && entry.contains("passes again")
        }
        /// Waits until `count` more failed checks followed the last warning.
        func failedChecksAfterLastWarning(_ count: Int) async -> Bool {
            await eventually { manager.after(last: isWarning).filter { $0 == "check:fail" }.count >= count }
        }
        try await running(service) { shutdown in
            await service.ready()
            // First episode: the first check fails and warns; three more failed checks add nothing.
            #expect(await eventually { manager.timeline.contains(where: isWarning) }, "\(manager.timeline)")
            #expect(await failedChecksAfterLastWarning(3))

            manager.healthy.store(true, ordering: .sequentiallyConsistent)
            #expect(await eventually { manager.timeline.contains(where: isRecovery) }, "\(manager.timeline)")
            #expect(await eventually { manager.watchdogPings > 0 })

            // Second episode: one more warning, then three more failed checks.
            manager.healthy.store(false, ordering: .sequentiallyConsistent)
            #expect(await eventually { manager.timeline.filter(isWarning).count >= 2 }, "\(manager.timeline)")
            #expect(await failedChecksAfterLastWarning(3))
            await shutdown()
        }
        let timeline = manager.timeline
        #expect(timeline.filter(isWarning).count == 2, "\(timeline)")
        #expect(timeline.filter(isRecovery).count == 1, "\(timeline)")
        // Each warning directly follows the failed check that began its episode.
        for i in timeline.indices where isWarning(timeline[i]) {
            #expect(i > 0 && timeline[i - 1] == "check:fail")
        }
    }

    @Test func noWatchdogWhenSystemdDoesNotAskForOne() async throws {
        let manager = FakeServiceManager()
        let service = NotifyService(notifier: manager.notifier(watchdog: nil), logger: manager.logger())
        try await running(service) { shutdown in
            await service.ready(status: "up")
            // Past readiness the service decided: no watchdog, so it only waits for shutdown.
            #expect(await eventually { manager.logLines.contains { $0.contains("no watchdog; no pings") } })
            await shutdown()
        }
        #expect(manager.messages == ["READY=1\nSTATUS=up", "STOPPING=1"])
    }

    @Test func shutdownBeforeReadinessOnlySaysStopping() async throws {
        let manager = FakeServiceManager()
        let service = NotifyService(notifier: manager.notifier(watchdog: .milliseconds(200)), logger: manager.logger())
        try await running(service) { shutdown in
            // Shut down while the service waits for readiness.
            #expect(await eventually { manager.logLines.contains { $0.contains("waiting for readiness") } })
            await shutdown()
        }
        #expect(manager.messages == ["STOPPING=1"])
    }

    @Test func cancellationAlsoSaysStopping() async throws {
        let manager = FakeServiceManager()
        let service = NotifyService(notifier: manager.notifier(watchdog: .milliseconds(200)), logger: Self.silent)
        let run = Task { try await service.run() }
        await service.ready()
        #expect(await eventually { manager.watchdogPings > 0 })
        run.cancel()
        try await run.value
        #expect(manager.messages.last == "STOPPING=1")
    }

    @Test func reloadSendsReloadingThenReadyAgain() async {
        let manager = FakeServiceManager()
        let service = NotifyService(notifier: manager.notifier(watchdog: nil), logger: Self.silent)
        await service.ready(status: "up")
        await service.reloading(status: "reloading configuration")
        await service.ready(status: "up again")
        await service.ready(status: "up again")
        #expect(
            manager.messages == [
                "READY=1\nSTATUS=up", "RELOADING=1\nSTATUS=reloading configuration", "READY=1\nSTATUS=up again",
            ])
    }

    @Test func sendFailuresAreLoggedOnceAndNeverThrow() async throws {
        let manager = FakeServiceManager(failing: true)
        let service = NotifyService(
            notifier: manager.notifier(watchdog: .milliseconds(100)), logger: manager.logger(level: .info))
        try await running(service) { shutdown in
            await service.ready(status: "up")
            await service.updateStatus("still up")
            // READY, STATUS and at least two watchdog pings were tried, and failed.
            #expect(await eventually { manager.failedSends >= 4 })
            await shutdown()
        }
        #expect(manager.logLines.count == 1, "\(manager.logLines)")
        #expect(manager.logLines.first?.contains("msg=\"cannot notify systemd\"") == true)
        #expect(manager.logLines.first?.contains("errno 111") == true)
        #expect(manager.messages.isEmpty)
    }

    /// The watchdog period is read once, through `sd_watchdog_enabled` (which also checks `WATCHDOG_PID`),
    /// and the event-loop heartbeat is derived from that same reading.
    @Test func theWatchdogIsReadOnceAndTheHeartbeatBeatsFaster() {
        let reads = Mutex(0)
        let notifier = SystemdNotifier(send: { (_: String) throws(SystemdError) -> Bool in true },
                                       watchdogTimeout: { reads.withLock { $0 += 1 }; return .seconds(30) })
        let service = NotifyService(notifier: notifier, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        #expect(service.watchdog?.timeout == .seconds(30))
        #expect(service.watchdog?.heartbeatInterval == 7)
        #expect(service.watchdog?.maxHeartbeatAge == 15)
        #expect(reads.withLock { $0 } == 1)
        let off = NotifyService(notifier: FakeServiceManager().notifier(watchdog: nil),
                                logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        #expect(off.watchdog == nil)
    }
}
