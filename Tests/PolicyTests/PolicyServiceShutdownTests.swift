import Foundation
import Logging
import Monitor
import Policy
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// SIGTERM (a graceful shutdown) must end the service even while restores wait or retry.
@Suite struct PolicyServiceShutdownTests {
    /// Runs the service in a `ServiceGroup` until `ready`, triggers a graceful shutdown and reports
    /// whether `run()` returned within `timeout`.
    func shutsDown(initial: IndexState, previous: PersistedState, config: PolicyConfig,
                   timeout: Duration = .seconds(5), ready: @escaping @Sendable (LogCapture, FakeDeviceActions) -> Bool) async throws -> Bool {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try store.save(previous)
        let index = DeviceIndex(uri: "test:///policy")
        await index.replace(with: initial)
        let log = LogCapture()
        let actions = FakeDeviceActions(index: index, failTimes: .max)
        let service = PolicyService(index: index, waitForFirstSync: {}, actions: actions, config: config, store: store,
                                    bootID: PolicyHarness.bootID, saveDelay: .milliseconds(10), logger: log.logger)
        let (ready, ended) = await shutDownGracefully(service, once: { ready(log, actions) }, within: timeout)
        #expect(ready, "the restore never got going")
        return ended
    }

    @Test(arguments: 0..<10)
    func whileWaitingForAParent(round: Int) async throws {
        let u = Sample.uuid()
        let done = try await shutsDown(
            initial: .with([Sample.device(u)], parents: []),
            previous: PersistedState(bootID: "previous-boot", active: [Sample.saved(u)]),
            config: fastConfig(),
            ready: { log, _ in log.records.contains { $0.message.contains("waiting for parent") } })
        #expect(done, "round \(round): run() did not return after a graceful shutdown")
    }

    @Test func whileRetrying() async throws {
        let u = Sample.uuid()
        let done = try await shutsDown(
            initial: .with([Sample.device(u)]),
            previous: PersistedState(bootID: "previous-boot", active: [Sample.saved(u)]),
            config: fastConfig { $0.restore.deadline = .seconds(600); $0.restore.retryInitial = .seconds(30); $0.restore.retryMax = .seconds(60) },
            ready: { _, actions in !actions.calls.isEmpty })
        #expect(done, "run() did not return after a graceful shutdown")
    }

    @Test func duringTheAutostartGracePeriod() async throws {
        let u = Sample.uuid()
        let done = try await shutsDown(
            initial: .with([Sample.device(u, autostart: true)]),
            previous: PersistedState(bootID: "previous-boot", active: []),
            config: fastConfig { $0.restore.autostartGracePeriod = .seconds(600) },
            ready: { log, _ in log.records.contains { $0.message.contains("giving autostart") } })
        #expect(done, "run() did not return after a graceful shutdown")
    }

    /// A restore cut short by SIGTERM stays pending in the state file (the next run resumes it), and the
    /// final write carries the active set as the index has it, changes not yet consumed included.
    @Test func aRestoreCutShortStaysPendingAndTheFinalWriteIsCurrent() async throws {
        let restoring = Sample.uuid(), cameUp = Sample.uuid()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try store.save(PersistedState(bootID: "previous-boot", active: [Sample.saved(restoring)]))
        let index = DeviceIndex(uri: "test:///policy")
        await index.replace(with: .with([Sample.device(restoring)]))
        let log = LogCapture()
        let actions = FakeDeviceActions(index: index, failTimes: .max)
        let config = fastConfig { $0.restore.deadline = .seconds(600); $0.restore.retryInitial = .seconds(30); $0.restore.retryMax = .seconds(60) }
        // A long coalescing delay: only the final write can carry what happens just before shutdown.
        let service = PolicyService(index: index, waitForFirstSync: {}, actions: actions, config: config, store: store,
                                    bootID: PolicyHarness.bootID, saveDelay: .seconds(30), logger: log.logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test.group") { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await eventually { !actions.calls.isEmpty }, "the restore never got going")
            await index.mutate { $0.upsertDevice(Sample.definition(cameUp), flags: DeviceFlags(active: true, persistent: false, autostart: false)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        guard case .loaded(let saved) = store.load() else { Issue.record("no state file after shutdown"); return }
        #expect(saved.bootID == PolicyHarness.bootID)
        #expect(saved.pending.map(\.uuid) == [restoring], "the unfinished restore must stay pending")
        #expect(saved.active.map(\.uuid) == [cameUp], "the final write reflects the index at shutdown")
    }

    /// SIGTERM while restores are queued for libvirt: the one in flight finishes, none of the queued ones
    /// starts afterwards, and they stay pending for the next run.
    @Test func queuedRestoresStartNothingAfterShutdown() async throws {
        let devices = [Sample.uuid(), Sample.uuid(), Sample.uuid()]
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        try store.save(PersistedState(bootID: "previous-boot", active: devices.map { Sample.saved($0) }))
        let index = DeviceIndex(uri: "test:///policy")
        await index.replace(with: .with(devices.map { Sample.device($0) }))
        let log = LogCapture()
        // The first start fails at once and retries after 500 ms; the second holds the only slot until the
        // graceful shutdown reaches it (as it reaches a libvirt call in flight), and the others queue behind.
        let starts = Capture()
        let actions = FakeDeviceActions(index: index, failTimes: .max, hooks: .init(beforeAction: { name in
            starts.append(name)
            if starts.all.count == 2 { try? await gracefulShutdown() }
        }))
        let config = fastConfig {
            $0.restore.maxConcurrent = 1
            $0.restore.deadline = .seconds(600)
            $0.restore.retryInitial = .milliseconds(500)
        }
        let service = PolicyService(index: index, waitForFirstSync: {}, actions: actions, config: config, store: store,
                                    bootID: PolicyHarness.bootID, saveDelay: .milliseconds(10), logger: log.logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test.group") { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Two starts made (the second in "libvirt"), and the first device's retry announced: it waits for
            // the slot (the third device waits for it too, to check its parent).
            #expect(await eventually { log.records(.restoreAttempted).count == 3 && actions.startCalls.count == 2 },
                    "the restores never queued: \(log.records(.restoreAttempted).map(\.message)), starts \(actions.startCalls)")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(actions.startCalls.count == 2, "a queued restore started after SIGTERM: \(actions.startCalls)")
        guard case .loaded(let saved) = store.load() else { Issue.record("no state file after shutdown"); return }
        #expect(Set(saved.pending.map(\.uuid)) == Set(devices), "the unfinished restores must stay pending")
    }
}
