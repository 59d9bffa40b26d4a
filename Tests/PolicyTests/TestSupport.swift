import Foundation
import Logging
import Monitor
import Policy
import Synchronization
import TestSupport

struct FakeActionError: Error, CustomStringConvertible {
    var description: String { "Unable to start mediated device (fake)" }
}

/// A `DeviceActions` that records calls, fails a set number of times, and runs hooks that may change
/// the index (to play mdevctl's udev rule winning a race, or a parent appearing).
final class FakeDeviceActions: DeviceActions {
    struct Call: Hashable, Sendable {
        var action: String
        var argument: String
        var time: ContinuousClock.Instant
    }

    struct Hooks: Sendable {
        /// Runs before every `nodeDeviceExists`; its result is the answer (default: the parent is indexed).
        var exists: (@Sendable (String) async throws -> Bool)?
        /// Runs before every `start`/`create` decides whether to fail.
        var beforeAction: (@Sendable (String) async -> Void)?
        /// What a failing `start`/`create` throws (default: `FakeActionError`).
        var failure: (@Sendable () -> any Error)?
    }

    private let index: DeviceIndex
    private let failures: Mutex<Int>
    private let hooks: Hooks
    private let recorded = Mutex<[Call]>([])
    private let existsChecks = Mutex<[String]>([])

    /// - Parameter failTimes: how many `start`/`create` calls throw before they succeed (`.max`: always).
    init(index: DeviceIndex, failTimes: Int = 0, hooks: Hooks = Hooks()) {
        self.index = index
        self.failures = Mutex(failTimes)
        self.hooks = hooks
    }

    var calls: [Call] { recorded.withLock { $0 } }
    var startCalls: [String] { calls.filter { $0.action == "start" }.map(\.argument) }
    var checkedParents: [String] { existsChecks.withLock { $0 } }

    func nodeDeviceExists(_ name: String) async throws -> Bool {
        existsChecks.withLock { $0.append(name) }
        if let exists = hooks.exists { return try await exists(name) }
        return index.snapshot.state.parents[name] != nil
    }

    func start(deviceNamed name: String) async throws {
        try await act("start", name)
    }

    func create(xml: String) async throws -> String {
        try await act("create", xml)
        return "created"
    }

    private func act(_ action: String, _ argument: String) async throws {
        recorded.withLock { $0.append(Call(action: action, argument: argument, time: .now)) }
        await hooks.beforeAction?(argument)
        let fail = failures.withLock { n -> Bool in
            guard n > 0 else { return false }
            if n != .max { n -= 1 }
            return true
        }
        if fail { throw hooks.failure?() ?? FakeActionError() }
    }
}

/// Devices on NVIDIA parents; every domain gets a UUID of its own.
enum Sample: SampleHost {
    static let parent = "pci_0000_3b_00_0"
    static let otherParent = "pci_0000_af_00_0"
    static let type = "nvidia-63"
    static let typeName = "GRID"

    static func domainUUID() -> String { uuid() }

    static func saved(_ uuid: String, parent: String = parent, type: String = type, persistent: Bool = true,
                      attrs: [MdevAttr] = []) -> PersistedState.Device {
        PersistedState.Device(uuid: uuid, parent: parent, mdevType: type, attrs: attrs, persistent: persistent)
    }
}

/// A restore configuration quick enough for tests.
func fastConfig(_ edit: (inout PolicyConfig) -> Void = { _ in }) -> PolicyConfig {
    var config = PolicyConfig()
    config.restore.retryInitial = .milliseconds(20)
    config.restore.retryMax = .milliseconds(80)
    config.restore.deadline = .milliseconds(400)
    config.restore.autostartGracePeriod = .milliseconds(10)
    edit(&config)
    return config
}

/// A `PolicyService` over a real `DeviceIndex`, a temp state directory and fake actions, run for the
/// duration of `body`.
struct PolicyHarness {
    let index: DeviceIndex
    let actions: FakeDeviceActions
    let store: StateStore
    let log: LogCapture
    let service: PolicyService
    static let bootID = "11111111-2222-3333-4444-555555555555"

    var metrics: PolicyMetrics.Snapshot { service.metrics.snapshot }

    /// The `restore` policy's action counter for `result`.
    func count(_ result: String, action: String = "start") -> Int {
        metrics.actions.first { $0.key.policy == "restore" && $0.key.action == action && $0.key.result == result }?.value ?? 0
    }

    /// Pushes a marker change through the index and returns once the policy consumed it: the index hands
    /// changes to the policy in order, so every change made before this call has been consumed by then.
    /// The marker is a defined domain referencing an mdev that does not exist, which the policy reports
    /// as a reference problem (a metric the test can see).
    func consumedSoFar() async -> Bool {
        let marker = "marker-" + Sample.uuid()
        await index.mutate { $0.upsertDomain(Sample.domain(marker, uuids: [Sample.uuid()])) }
        return await eventually { metrics.problems.contains { $0.domain == marker } }
    }

    /// The state file as saved, or nil.
    var saved: PersistedState? {
        if case .loaded(let state) = store.load() { return state }
        return nil
    }

    /// - Parameters:
    ///   - initial: the index after the "first full sync" (applied before the service starts).
    ///   - previous: the state file left by the previous run, if any.
    ///   - stateFile: or that file's raw text.
    static func run(
        initial: IndexState, previous: PersistedState? = nil, config: PolicyConfig = fastConfig(),
        failTimes: Int = 0, hooks: @escaping (DeviceIndex) -> FakeDeviceActions.Hooks = { _ in .init() },
        saveDelay: Duration = .milliseconds(10), bootID: String = bootID, writable: Bool? = nil,
        stateFile: String? = nil,
        _ body: (PolicyHarness) async throws -> Void
    ) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        if let previous { try store.save(previous) }
        // A state file as another writer left it (corrupt, or from another version).
        if let stateFile { try Data(stateFile.utf8).write(to: URL(fileURLWithPath: store.path)) }
        let index = DeviceIndex(uri: "test:///policy")
        await index.replace(with: initial)
        let actions = FakeDeviceActions(index: index, failTimes: failTimes, hooks: hooks(index))
        let log = LogCapture()
        let service = PolicyService(index: index, waitForFirstSync: {}, actions: actions, config: config,
                                    store: store, bootID: bootID, saveDelay: saveDelay, writable: writable, logger: log.logger)
        let harness = PolicyHarness(index: index, actions: actions, store: store, log: log, service: service)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            defer { group.cancelAll() }
            try await body(harness)
        }
    }
}

extension IndexState {
    /// A state with these devices, every parent they name, and these domains.
    static func with(_ devices: [MdevDevice], domains: [DomainInfo] = [], parents: [String]? = nil) -> IndexState {
        Sample.state(devices, domains: domains, parents: parents)
    }
}
