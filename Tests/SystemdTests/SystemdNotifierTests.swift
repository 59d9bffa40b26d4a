import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import Systemd

/// The real `sd_notify` path, end to end: this process binds a datagram socket and starts a copy of the test
/// binary that runs ``NotifyChildProcess`` with `NOTIFY_SOCKET` and `WATCHDOG_USEC` in *its* environment.
/// Nothing here changes this process's environment, so parallel tests (and the daemons they spawn) neither
/// race with `setenv` nor leak notifications into our socket.
@Suite struct SystemdNotifierTests {
    static let markerHealthy = "X_MDEVMON_TEST=healthy"

    @Test func realNotificationsReachTheSocket() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let listener = try DatagramListener(path: directory.path + "/notify")
        let outputPath = directory.path + "/child-output"
        #expect(FileManager.default.createFile(atPath: outputPath, contents: nil))

        let child = Process()
        child.executableURL = URL(
            fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        child.arguments = ["--testing-library", "swift-testing", "--filter", "NotifyChildProcess"]
        var environment = ProcessInfo.processInfo.environment
        environment["WATCHDOG_PID"] = nil
        environment["NOTIFY_SOCKET"] = listener.path
        environment["WATCHDOG_USEC"] = "200000"
        environment[NotifyChild.switchVariable] = "1"
        child.environment = environment
        child.standardInput = FileHandle.nullDevice
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        child.standardOutput = output
        child.standardError = output
        try child.run()

        // Drain while the child runs: a full datagram queue would block its sd_notify.
        var messages: [String] = []
        let finished = await eventually(timeout: .seconds(60)) {
            messages += listener.drain()
            return !child.isRunning
        }
        if !finished { child.terminate() }
        child.waitUntilExit()
        messages += listener.drain()
        try output.close()

        let log = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        try #require(finished && child.terminationStatus == 0, "child test failed:\n\(log)")

        let nonWatchdog = messages.filter { $0 != "WATCHDOG=1" }
        #expect(
            nonWatchdog == [
                "READY=1\nSTATUS=watching 0 devices", Self.markerHealthy, "STATUS=watching 3 devices", "STOPPING=1",
            ], "child output:\n\(log)")
        let ready = try #require(messages.firstIndex(of: "READY=1\nSTATUS=watching 0 devices"))
        let healthy = try #require(messages.firstIndex(of: Self.markerHealthy))
        let stopping = try #require(messages.firstIndex(of: "STOPPING=1"))
        #expect(ready == 0, "nothing before READY=1")
        #expect(!messages[ready..<healthy].contains("WATCHDOG=1"), "no ping while the health check fails")
        #expect(messages[healthy..<stopping].contains("WATCHDOG=1"), "pings once healthy")
    }
}

enum NotifyChild {
    static let switchVariable = "MDEVMON_NOTIFY_CHILD"
    static var isChild: Bool { ProcessInfo.processInfo.environment[switchVariable] == "1" }
}

/// Runs only inside the child process that ``SystemdNotifierTests`` starts; owning that whole process, it may
/// change its environment freely.
@Suite(.enabled(if: NotifyChild.isChild, "runs only as the child of SystemdNotifierTests"))
struct NotifyChildProcess {
    @Test func sendsThroughSdNotify() async throws {
        let notifier = SystemdNotifier()
        #expect(notifier.isEnabled)
        #expect(notifier.watchdogTimeout() == .milliseconds(200))

        // Log to stderr, which the parent shows when its expectations fail, and keep the lines to wait for.
        let lines = Capture()
        let logger = Logger(label: "notify-child") {
            var handler = StderrLogHandler(label: $0, level: .trace, metadataProvider: nil)
            handler.output = { lines.append($0); StandardError.write($0) }
            return handler
        }
        let healthy = Atomic<Bool>(false)
        let checks = Atomic<Int>(0)
        let service = NotifyService(logger: logger) {
            checks.add(1, ordering: .sequentiallyConsistent)
            return healthy.load(ordering: .sequentiallyConsistent)
        }
        let group = ServiceGroup(
            configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await service.updateStatus("syncing")
            // The service runs and waits for readiness; whatever it sent meanwhile would come before READY=1.
            #expect(await eventually { lines.all.contains { $0.contains("waiting for readiness") } })
            await service.ready(status: "watching 0 devices")
            // Six ping intervals, each a failed check: all pings withheld.
            #expect(await eventually { checks.load(ordering: .sequentiallyConsistent) >= 6 })
            #expect(try notifier.notify(SystemdNotifierTests.markerHealthy))
            healthy.store(true, ordering: .sequentiallyConsistent)
            // Three more checks, the last two (at least) passing: pinged.
            let switched = checks.load(ordering: .sequentiallyConsistent)
            #expect(await eventually { checks.load(ordering: .sequentiallyConsistent) >= switched + 3 })
            await service.updateStatus("watching 3 devices")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }

        // The rest sends nothing to the parent.
        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        #expect(notifier.watchdogTimeout() == nil, "the watchdog belongs to another process")
        setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1)
        #expect(throws: SystemdError.self) { try notifier.notify("READY=1") }
        unsetenv("NOTIFY_SOCKET")
        #expect(!notifier.isEnabled)
        #expect(try notifier.notify("READY=1") == false, "no service manager: a quiet no-op")
    }
}
