import Logging
import Monitor
import Synchronization

/// Brings mdevs back after a reboot: each device waits (without polling) for its parent, then is
/// started or re-created with capped exponential retries until a deadline.
///
/// Bounded: waiting for a parent costs a parked task and nothing else; talking to libvirt takes one of
/// `restore.max_concurrent` slots, so 500 restores after a reboot are at most that many RPCs at once.
final class RestoreRunner: Sendable {
    let parents = ParentWaiters()
    private let index: DeviceIndex
    private let actions: any DeviceActions
    private let config: @Sendable () -> PolicyConfig
    private let metrics: PolicyMetrics
    private let logger: Logger
    private let slots: AsyncSemaphore

    init(index: DeviceIndex, actions: any DeviceActions, config: @escaping @Sendable () -> PolicyConfig,
         metrics: PolicyMetrics, logger: Logger) {
        self.index = index
        self.actions = actions
        self.config = config
        self.metrics = metrics
        self.logger = logger
        // Read once: a reload changes ownership and dry_run for running restores, not the slot count.
        slots = AsyncSemaphore(config().restore.maxConcurrent)
    }

    /// Runs every task to its end (success, skip, give-up, or cancellation), calling `finished` for each
    /// that reached an outcome; a restore cut short by shutdown stays pending, so the next run resumes it.
    func run(_ tasks: [RestoreTask], finished: @escaping @Sendable (RestoreTask) -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for task in tasks {
                group.addTask {
                    if await self.restore(task) { finished(task) }
                }
            }
        }
    }

    /// - Returns: true when the restore reached an outcome, false when it was cancelled first.
    func restore(_ task: RestoreTask) async -> Bool {
        let device = task.device
        let fields = Self.fields(device)
        // Wait for the parent: a CREATED event wakes us, never a poll. While libvirt still files the
        // device under its placeholder parent, the real parent is not there yet either.
        var announced = false
        var lastCheckError: String?
        var checkDelay = config().restore.retryInitial
        while !Task.isCancelled {
            let now = index.snapshot.state.current(device)
            let parent = device.parent == IndexState.placeholderParent ? (now?.parent ?? device.parent) : device.parent
            let unparented = parent == IndexState.placeholderParent || now?.parent == IndexState.placeholderParent
            let waiter = await parents.register(unparented ? ParentWaiters.any : parent)
            if !unparented {
                do {
                    let exists = try await slots.holding { try await self.actions.nodeDeviceExists(parent) }
                    if exists { await parents.cancel(waiter); break }
                } catch {
                    // A libvirt error is that error, not "the parent is missing": say so, once per kind,
                    // and check again after a backoff (no change may ever come to wake this restore).
                    let text = "\(error)"
                    if text != lastCheckError {
                        lastCheckError = text
                        logger.warning("mdev \(device.uuid): cannot check whether parent \(parent) exists, checking again in \(checkDelay): \(error)",
                                       metadata: fields.merging(LogKey.fields(of: error)) { $1 })
                    }
                    await parents.cancel(waiter)
                    try? await Task.sleep(for: checkDelay)
                    checkDelay = min(checkDelay * 2, config().restore.retryMax)
                    continue
                }
            }
            if !announced {
                logger.info("mdev \(device.uuid): waiting for parent \(unparented ? "(not yet known)" : parent) to appear", metadata: fields)
                announced = true
            }
            await parents.wait(waiter)
        }
        if task.reason == .autostart {
            try? await Task.sleep(for: config().restore.autostartGracePeriod)
        }
        let started = ContinuousClock.now
        var delay = config().restore.retryInitial
        var attempt = 0
        while !Task.isCancelled {
            let cfg = config()
            if !cfg.owns(uuid: device.uuid, parent: device.parent, mdevType: device.mdevType) {
                logger.notice("mdev \(device.uuid) is no longer owned (config reloaded); not restoring", metadata: fields)
                return true
            }
            if index.snapshot.state.current(device)?.active == true {
                // Someone else (mdevctl's udev rule, an operator) brought it up: nothing to do, nothing failed.
                logger.info("mdev \(device.uuid) is already active; nothing to do", metadata: fields)
                metrics.count(policy: "restore", action: task.action, result: "skipped")
                return true
            }
            let users = index.snapshot.state.domainsUsing(device.uuid)
            if !users.isEmpty {
                // Policies never touch an mdev a running domain holds, whatever the index says of it.
                logger.notice("mdev \(device.uuid) is in use by running domain \(users.sorted().joined(separator: ", ")); not restoring",
                              metadata: fields)
                metrics.count(policy: "restore", action: task.action, result: "skipped")
                return true
            }
            if cfg.dryRun {
                logger.notice("dry run: would \(task.action) mdev \(device.uuid) on \(device.parent) (\(task.reason.rawValue))",
                              metadata: MessageID.restoreAttempted.metadata.merging(fields) { $1 })
                metrics.count(policy: "restore", action: task.action, result: "dry_run")
                return true
            }
            attempt += 1
            logger.notice("restoring mdev \(device.uuid) on \(device.parent): \(task.action), attempt \(attempt) (\(task.reason.rawValue))",
                          metadata: MessageID.restoreAttempted.metadata.merging(fields) { $1 })
            do {
                try await slots.holding {
                    switch task.kind {
                    case .start(let name):
                        // libvirt renames a device that moved from the placeholder to its real parent.
                        try await self.actions.start(deviceNamed: self.index.snapshot.state.current(device)?.name ?? name)
                    case .recreate(let xml): _ = try await self.actions.create(xml: xml)
                    }
                }
                let extra = task.reason == .autostart ? " (autostart had failed; repaired)" : ""
                logger.notice("restored mdev \(device.uuid) on \(device.parent)\(extra)",
                              metadata: MessageID.restoreSucceeded.metadata.merging(fields) { $1 })
                metrics.count(policy: "restore", action: task.action, result: "success")
                return true
            } catch {
                // Someone else (mdevctl's udev rule) may have won the race: that is not a failure.
                if index.snapshot.state.current(device)?.active == true { continue }
                metrics.count(policy: "restore", action: task.action, result: "failure")
                let elapsed = ContinuousClock.now - started
                if elapsed + delay > cfg.restore.deadline {
                    logger.error("giving up on mdev \(device.uuid) on \(device.parent) after \(attempt) attempts: \(error)",
                                 metadata: MessageID.restoreGaveUp.metadata.merging(fields) { $1 }.merging(LogKey.fields(of: error)) { $1 })
                    metrics.count(policy: "restore", action: task.action, result: "gave_up")
                    return true
                }
                logger.warning("could not \(task.action) mdev \(device.uuid) on \(device.parent) (attempt \(attempt)), retrying in \(delay): \(error)",
                               metadata: MessageID.restoreFailed.metadata.merging(fields) { $1 }.merging(LogKey.fields(of: error)) { $1 })
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, cfg.restore.retryMax)
            }
        }
        return false
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

/// A counting semaphore for async code: at most `limit` holders at once, the rest wait in order.
final class AsyncSemaphore: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ limit: Int) {
        precondition(limit > 0)
        state = Mutex(State(free: limit))
    }

    func holding<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.free > 0 { s.free -= 1; return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    private func release() {
        // A waiter inherits the slot directly, so the count never goes above the limit.
        state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.free += 1; return nil }
            return s.waiters.removeFirst()
        }?.resume()
    }
}
