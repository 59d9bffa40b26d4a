public import Logging
public import Monitor
public import ServiceLifecycle
import Synchronization

/// Runs the policies: keeps the crash-safe state file in step with the active set, restores mdevs
/// after a reboot, and reports domains whose mdev references are broken.
public final class PolicyService: Service, Sendable {
    private let index: DeviceIndex
    private let waitForFirstSync: @Sendable () async -> Void
    private let actions: any DeviceActions
    private let store: StateStore
    private let bootID: String
    private let logger: Logger
    public let metrics = PolicyMetrics()
    private let config: Mutex<PolicyConfig>
    private let parents = ParentWaiters()
    private let saveDelay: Duration

    /// - Parameters:
    ///   - index: the Monitor's index.
    ///   - waitForFirstSync: returns once the Monitor finished its first full sync.
    ///   - bootID: this boot's id (`BootID.current()`).
    ///   - saveDelay: how long bursts of changes are coalesced before the state file is written.
    public init(index: DeviceIndex, waitForFirstSync: @escaping @Sendable () async -> Void, actions: any DeviceActions,
                config: PolicyConfig, store: StateStore, bootID: String, saveDelay: Duration = .milliseconds(200),
                logger: Logger) {
        self.index = index
        self.waitForFirstSync = waitForFirstSync
        self.actions = actions
        self.config = Mutex(config)
        self.store = store
        self.bootID = bootID
        self.saveDelay = saveDelay
        self.logger = logger
    }

    public var currentConfig: PolicyConfig { config.withLock { $0 } }

    /// Applies a reloaded configuration; running restores pick up ownership and dry_run at their next step.
    public func update(config new: PolicyConfig) {
        config.withLock { $0 = new }
        evaluateReferences(index.snapshot.state)
    }

    public func run() async throws {
        let changes = await index.changes()
        let previous = loadPrevious()
        // A daemon stopped before libvirt was ever reachable must still shut down promptly.
        await cancelWhenGracefulShutdown { await self.waitForFirstSync() }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        let snapshot = index.snapshot
        evaluateReferences(snapshot.state)

        var tasks: [RestoreTask] = []
        let cfg = currentConfig
        if let previous, cfg.restore.enabled {
            let rebooted = previous.bootID != bootID
            // Same boot: only resume what a previous run (killed mid-restore) had not finished.
            // After a reboot, devices still pending from before it count as active before it too.
            let input = PersistedState(bootID: previous.bootID, active: rebooted ? previous.active + previous.pending.filter { p in
                !previous.active.contains { $0.key == p.key }
            } : previous.pending)
            let plan = RestorePlanner.plan(previous: input, state: snapshot.state, config: cfg, includeAutostart: rebooted)
            tasks = plan.tasks
            if rebooted {
                logger.notice("host rebooted since the last run (boot id \(previous.bootID) → \(bootID)): \(tasks.count) mdevs to restore")
            } else if !previous.pending.isEmpty {
                logger.notice("resuming \(tasks.count) restores a previous run had not finished")
            }
            for (device, why) in plan.skipped {
                logger.notice("not restoring mdev \(device.uuid) on \(device.parent): \(why)", metadata: Self.fields(device))
            }
        }
        let pending = PendingSet(tasks.map(\.device))
        metrics.setPending("restore", pending.count)
        save(snapshot, pending: pending)

        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in tasks {
                group.addTask { [self] in
                    await self.restore(task)
                    pending.remove(task.device.key)
                    self.metrics.setPending("restore", pending.count)
                    self.save(self.index.snapshot, pending: pending)
                    return false
                }
            }
            group.addTask { [self] in
                try await self.consume(changes, pending: pending)
                return true
            }
            // The change consumer runs until shutdown; restores finish on their own before or then.
            while let isConsumer = try await group.next(), !isConsumer {}
            // Cancel before waking: a restore between its cancellation check and its wait then sees the
            // cancellation in `wait` instead of waiting forever for a parent after the last signal.
            group.cancelAll()
            await parents.signalAll()
        }
    }

    // MARK: state file

    private func loadPrevious() -> PersistedState? {
        switch store.load() {
        case .missing:
            logger.info("no state file at \(store.path): first run, nothing to restore")
            return nil
        case .loaded(let state):
            return state
        case .corrupt(let reason, let movedTo):
            logger.warning("state file \(store.path) is unreadable (\(reason)); moved aside to \(movedTo ?? "nowhere (move failed)"), starting fresh")
            return nil
        }
    }

    /// Saves the active set and, separately, the devices still being restored (a restart resumes them).
    private func save(_ snapshot: IndexSnapshot, pending: PendingSet) {
        guard snapshot.status.synced else { return }
        let active = snapshot.state.devices.values.filter(\.active).map(PersistedState.Device.init)
        do {
            try store.save(PersistedState(bootID: bootID, active: active, pending: pending.devices))
        } catch {
            logger.error("cannot write state file \(store.path): \(error)")
        }
    }

    private func consume(_ changes: AsyncStream<IndexChange>, pending: PendingSet) async throws {
        // Bursts are coalesced: a change marks the state dirty; the saver writes once per saveDelay.
        let (dirty, dirtySignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                for await _ in dirty {
                    try? await Task.sleep(for: self.saveDelay)
                    self.save(self.index.snapshot, pending: pending)
                }
            }
            for await change in changes.cancelOnGracefulShutdown() {
                if case .parentAdded(let parent) = change { await parents.signal(parent.name) }
                if case .deviceAdded = change { await parents.signal(ParentWaiters.any) }
                if case .connection(.synced) = change { await parents.signalAll() }
                if Self.affectsActiveSet(change) { dirtySignal.yield() }
                evaluateReferences(index.snapshot.state)
            }
            dirtySignal.finish()
            try await group.waitForAll()
            // Wake restores waiting for a parent so they notice the shutdown.
            await parents.signalAll()
        }
    }

    static func affectsActiveSet(_ change: IndexChange) -> Bool {
        switch change {
        case .deviceAdded(let d), .deviceRemoved(let d): d.active
        case .deviceChanged(let old, let new):
            old.active != new.active || (new.active && (old.persistent != new.persistent || old.definition.attrs != new.definition.attrs))
        case .connection(.synced): true
        default: false
        }
    }

    // MARK: references

    private func evaluateReferences(_ state: IndexState) {
        let enabled = currentConfig.domainReferences.enabled
        let problems = enabled ? state.referenceProblems : []
        let (appeared, cleared) = tracker.withLock { $0.update(problems) }
        metrics.setProblems(problems, enabled: enabled)
        for p in appeared {
            let level: Logger.Level = p.domainAutostart ? .error : .warning
            let why = p.reason == .missing ? "no such mdev exists" : "the mdev is not active"
            let boot = p.domainAutostart ? "; the domain autostarts and will fail to start at boot" : ""
            logger.log(level: level, "domain \(p.domain) references mdev \(p.uuid) but \(why)\(boot)",
                       metadata: LogEvent.referenceProblem.metadata.merging([
                           LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                           "reason": .string(p.reason.rawValue),
                       ]) { $1 })
        }
        for p in cleared {
            logger.notice("domain \(p.domain) reference to mdev \(p.uuid) is resolved",
                          metadata: LogEvent.referenceResolved.metadata.merging([
                              LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                          ]) { $1 })
        }
    }

    private let tracker = Mutex(ReferenceTracker())

    // MARK: restore

    private func restore(_ task: RestoreTask) async {
        let device = task.device
        let fields = Self.fields(device)
        // Wait for the parent: a CREATED event wakes us, never a poll. While libvirt still files the
        // device under its placeholder parent, the real parent is not there yet either.
        var announced = false
        while !Task.isCancelled {
            let now = index.snapshot.state.current(device)
            let parent = device.parent == IndexState.placeholderParent ? (now?.parent ?? device.parent) : device.parent
            let unparented = parent == IndexState.placeholderParent || now?.parent == IndexState.placeholderParent
            let waiter = await parents.register(unparented ? ParentWaiters.any : parent)
            if !unparented, (try? await actions.nodeDeviceExists(parent)) == true { await parents.cancel(waiter); break }
            if !announced {
                logger.info("mdev \(device.uuid): waiting for parent \(unparented ? "(not yet known)" : parent) to appear", metadata: fields)
                announced = true
            }
            await parents.wait(waiter)
        }
        if task.reason == .autostart {
            try? await Task.sleep(for: currentConfig.restore.autostartGracePeriod)
        }
        let started = ContinuousClock.now
        var delay = currentConfig.restore.retryInitial
        var attempt = 0
        while !Task.isCancelled {
            let cfg = currentConfig
            if !cfg.owns(uuid: device.uuid, parent: device.parent, mdevType: device.mdevType) {
                logger.notice("mdev \(device.uuid) is no longer owned (config reloaded); not restoring", metadata: fields)
                return
            }
            if index.snapshot.state.current(device)?.active == true {
                // Someone else (mdevctl's udev rule, an operator) brought it up: nothing to do, nothing failed.
                logger.info("mdev \(device.uuid) is already active; nothing to do", metadata: fields)
                metrics.count(policy: "restore", action: task.action, result: "skipped")
                return
            }
            if cfg.dryRun {
                logger.notice("dry run: would \(task.action) mdev \(device.uuid) on \(device.parent) (\(task.reason.rawValue))",
                              metadata: LogEvent.restoreAttempted.metadata.merging(fields) { $1 })
                metrics.count(policy: "restore", action: task.action, result: "dry_run")
                return
            }
            attempt += 1
            logger.notice("restoring mdev \(device.uuid) on \(device.parent): \(task.action), attempt \(attempt) (\(task.reason.rawValue))",
                          metadata: LogEvent.restoreAttempted.metadata.merging(fields) { $1 })
            do {
                switch task.kind {
                case .start(let name):
                    // libvirt renames a device that moved from the placeholder to its real parent.
                    try await actions.start(deviceNamed: index.snapshot.state.current(device)?.name ?? name)
                case .recreate(let xml): _ = try await actions.create(xml: xml)
                }
                let extra = task.reason == .autostart ? " (autostart had failed; repaired)" : ""
                logger.notice("restored mdev \(device.uuid) on \(device.parent)\(extra)",
                              metadata: LogEvent.restoreSucceeded.metadata.merging(fields) { $1 })
                metrics.count(policy: "restore", action: task.action, result: "success")
                return
            } catch {
                // Someone else (mdevctl's udev rule) may have won the race: that is not a failure.
                if index.snapshot.state.current(device)?.active == true { continue }
                metrics.count(policy: "restore", action: task.action, result: "failure")
                let elapsed = ContinuousClock.now - started
                if elapsed + delay > cfg.restore.deadline {
                    logger.error("giving up on mdev \(device.uuid) on \(device.parent) after \(attempt) attempts: \(error)",
                                 metadata: LogEvent.restoreGaveUp.metadata.merging(fields) { $1 })
                    metrics.count(policy: "restore", action: task.action, result: "gave_up")
                    return
                }
                logger.warning("could not \(task.action) mdev \(device.uuid) on \(device.parent) (attempt \(attempt)), retrying in \(delay): \(error)",
                               metadata: LogEvent.restoreFailed.metadata.merging(fields) { $1 })
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, cfg.restore.retryMax)
            }
        }
    }

    static func fields(_ d: PersistedState.Device) -> Logger.Metadata {
        [LogKey.mdevUUID: .string(d.uuid), LogKey.mdevParent: .string(d.parent), LogKey.mdevType: .string(d.mdevType)]
    }
}

/// Devices whose restore is still in progress (kept in the state file until done).
final class PendingSet: Sendable {
    private let state: Mutex<[MdevKey: PersistedState.Device]>
    init(_ devices: [PersistedState.Device]) {
        state = Mutex(Dictionary(devices.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a }))
    }
    var count: Int { state.withLock { $0.count } }
    var devices: [PersistedState.Device] { state.withLock { Array($0.values) } }
    func remove(_ key: MdevKey) { _ = state.withLock { $0.removeValue(forKey: key) } }
}

/// Tasks waiting for a parent device to appear, woken by the index's `parentAdded` changes.
actor ParentWaiters {
    struct Token: Hashable { let id: Int; let parent: String }
    private var next = 0
    private var signalled: Set<Int> = []
    private var waiting: [Int: (parent: String, continuation: CheckedContinuation<Void, Never>?)] = [:]

    /// Registers before checking, so a parent appearing between the check and the wait is not missed.
    func register(_ parent: String) -> Token {
        next += 1
        waiting[next] = (parent, nil)
        return Token(id: next, parent: parent)
    }

    func cancel(_ token: Token) { waiting[token.id] = nil; signalled.remove(token.id) }

    func wait(_ token: Token) async {
        if signalled.remove(token.id) != nil || Task.isCancelled { waiting[token.id] = nil; return }
        await withCheckedContinuation { c in waiting[token.id]?.continuation = c }
    }

    /// Registered by a restore whose parent is not known yet: woken by any new parent or device.
    static let any = "*"

    func signal(_ parent: String) { wake { $0 == parent || $0 == Self.any } }
    func signalAll() { wake { _ in true } }

    private func wake(_ matches: (String) -> Bool) {
        for (id, entry) in waiting where matches(entry.parent) {
            if let c = entry.continuation {
                waiting[id] = nil
                c.resume()
            } else {
                signalled.insert(id)
            }
        }
    }
}
