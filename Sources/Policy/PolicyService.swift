public import Logging
public import Monitor
public import ServiceLifecycle
import Synchronization

/// Runs the policies, composed of three parts with one job each: the `StateWriter` (the only writer
/// of the crash-safe state file), the `RestoreRunner` (brings mdevs back after a reboot) and the
/// `ReferenceMonitor` (reports domains whose mdev references are broken). This type plans the restore
/// at start-up and feeds the index's changes to the three.
public final class PolicyService: Service, Sendable {
    private let index: DeviceIndex
    private let waitForFirstSync: @Sendable () async -> Void
    private let actions: any DeviceActions
    private let store: StateStore
    /// The boot the restore plan and the state file are for: the watched host's boot as of the last sync
    /// this service consumed (the index's `status.host` may already be a later one it has not planned for).
    private let plannedBoot: Mutex<String?>
    private let logger: Logger
    public let metrics = PolicyMetrics()
    private let config: Mutex<PolicyConfig>
    private let references: ReferenceMonitor
    private let saveDelay: Duration
    /// Where parked restores wait; a reload wakes those held by a dry run or by ownership.
    private let wakeups = RestoreWakeups()
    private let restoring = RestoringSet()

    /// Whether a restore is bringing back an mdev of this UUID now (waiting for its parent, in the autostart
    /// grace period, or retrying).
    public func isRestoring(uuid: String) -> Bool { restoring.contains(uuid: uuid) }
    private let evaluated = Latch()
    private let writable: Bool

    /// - Parameters:
    ///   - index: the Monitor's index.
    ///   - waitForFirstSync: returns once the Monitor finished its first full sync.
    ///   - bootID: the boot to assume until the connection reports the watched host's (`WatchedHost.boot`);
    ///     tests drive an index without a connection.
    ///   - saveDelay: how long bursts of changes are coalesced before the state file is written.
    ///   - writable: whether the libvirt connection may change devices; by default, whether `config` acts
    ///     (the daemon opens it read-only otherwise, and a reload does not reopen it).
    public init(index: DeviceIndex, waitForFirstSync: @escaping @Sendable () async -> Void, actions: any DeviceActions,
                config: PolicyConfig, store: StateStore, bootID: String? = nil, saveDelay: Duration = .milliseconds(200),
                writable: Bool? = nil, logger: Logger) {
        self.index = index
        self.waitForFirstSync = waitForFirstSync
        self.actions = actions
        self.config = Mutex(config)
        self.store = store
        plannedBoot = Mutex(bootID)
        self.saveDelay = saveDelay
        self.writable = writable ?? config.needsWriteAccess
        self.logger = logger
        references = ReferenceMonitor(metrics: metrics, restoring: { [restoring] in restoring.contains(uuid: $0) }, logger: logger)
    }

    public var currentConfig: PolicyConfig { config.withLock { $0 } }

    /// Returns once every domain has been judged after the first sync (restores planned by then, so a
    /// domain waiting for one reads `restoring`), or when the task is cancelled.
    public func waitForFirstEvaluation() async { await evaluated.wait() }

    /// Applies a reloaded configuration; running restores pick up ownership and dry_run at their next step,
    /// and those parked by a dry run or by ownership look again.
    public func update(config new: PolicyConfig) {
        config.withLock { $0 = new }
        // Every wait looks again: a parked restore at its hold, a waiting one at `wait_for_type`.
        wakeups.signalAll()
        references.evaluateAll(enabled: new.domainReferences.enabled) { index.snapshot.state }
    }

    public func run() async throws {
        let subscription = await index.subscribe()
        store.removeLeftoverTempFiles()
        let previous = loadPrevious()
        // A daemon stopped before libvirt was ever reachable must still shut down promptly.
        await cancelWhenGracefulShutdown { await self.waitForFirstSync() }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        let snapshot = index.snapshot
        let current = snapshot.status.host?.boot?.persisted ?? plannedBoot.withLock { $0 }
        let tasks = plan(previous, snapshot.state, boot: current)
        plannedBoot.withLock { $0 = current }
        // Planned restores are under way before any domain is judged: their domains read `restoring`, not
        // an alarm that a restore seconds later resolves. A dry run restores nothing.
        markRestoring(tasks)
        references.evaluateAll(enabled: currentConfig.domainReferences.enabled) { index.snapshot.state }
        evaluated.signal()
        let pending = PendingSet(tasks.map(\.device))
        metrics.setPending("restore", pending.count)
        let writer = StateWriter(store: store, delay: saveDelay, logger: logger) { [index, self] in
            Self.persisted(index.snapshot, plannedBoot: self.plannedBoot.withLock { $0 }, pending: pending.devices)
        }
        writer.markDirty()
        let runner = RestoreRunner(
            index: index, actions: actions, config: { [self] in self.currentConfig }, wakeups: wakeups, restoring: restoring,
            restoringChanged: { [self] uuid in
                references.apply(uuid: uuid, enabled: currentConfig.domainReferences.enabled) { index.snapshot.state }
            },
            writable: writable, metrics: metrics, logger: logger)

        await withTaskGroup(of: Void.self) { outer in
            outer.addTask { await writer.run() }
            await withTaskGroup(of: Void.self) { inner in
                inner.addTask { [metrics] in
                    await runner.run(tasks) { task in
                        pending.remove(task.device.key)
                        metrics.setPending("restore", pending.count)
                        writer.markDirty()
                    }
                }
                for await update in subscription.cancelOnGracefulShutdown() {
                    // A reconnect to a host that rebooted meanwhile (a remote one; a local reboot restarts
                    // mdevmon too) brings back what the reboot took, as a start-up after a reboot would.
                    let replanned = replanIfRebooted(update.changes, pending: pending)
                    consume(update.changes, runner: runner, writer: writer)
                    guard !replanned.isEmpty else { continue }
                    pending.insert(replanned.map(\.device))
                    metrics.setPending("restore", pending.count)
                    writer.markDirty()
                    inner.addTask { [metrics] in
                        await runner.run(replanned) { task in
                            pending.remove(task.device.key)
                            metrics.setPending("restore", pending.count)
                            writer.markDirty()
                        }
                    }
                }
                // Shutdown: parked and queued restores end where they are; nothing new is started.
                inner.cancelAll()
            }
            // The restores have ended (cut-short ones stay pending): the writer, cancelled, writes the final
            // state once more, whatever it had or had not been told, and ends.
            outer.cancelAll()
        }
    }

    /// Feeds one batch of index changes to the three parts; work proportional to the batch.
    private func consume(_ changes: [IndexChange], runner: RestoreRunner, writer: StateWriter) {
        var parents: Set<String> = [], anyParent = false, wakeAll = false, dirty = false
        for change in changes {
            switch change {
            // A parent appearing, or offering other types or instances (a vendor driver registering its types).
            case .parentAdded(let parent), .parentChanged(_, let parent): parents.insert(parent.name)
            case .deviceAdded: anyParent = true
            case .connection(.synced): wakeAll = true
            default: break
            }
            switch change {
            case .deviceAdded(let d) where d.active, .deviceChanged(_, let d) where d.active:
                // Before the blockers below are evaluated: a restored device's domains are no longer waiting.
                runner.becameActive(d.key)
                // A restore waiting for its parent's instance ends when someone else started the device.
                parents.insert(d.parent)
            default: break
            }
            if Self.affectsActiveSet(change) { dirty = true }
        }
        if wakeAll {
            wakeups.signalAll()
        } else {
            for parent in parents { wakeups.signal(parent: parent) }
            if anyParent { wakeups.signalAnyParent() }
        }
        if dirty { writer.markDirty() }
        references.apply(changes, enabled: currentConfig.domainReferences.enabled) { index.snapshot.state }
    }

    /// After a resync: when the watched host is in a later boot than the one the state was written under,
    /// the restore plan for what the resync found deactivated or gone (restores still pending are already
    /// under way and not planned twice). Marks the planned devices `restoring` before their domains are
    /// judged. Empty otherwise.
    private func replanIfRebooted(_ changes: [IndexChange], pending: PendingSet) -> [RestoreTask] {
        guard changes.contains(.connection(.synced)), let now = index.snapshot.status.host?.boot?.persisted else { return [] }
        let known = plannedBoot.withLock { old in
            defer { old = now }
            return old
        }
        guard let known, let was = HostBoot(persisted: known), HostBoot(persisted: now)?.isLater(than: was) == true else { return [] }
        var before: [PersistedState.Device] = []
        for change in changes {
            switch change {
            case .deviceChanged(let old, let new) where old.active && !new.active: before.append(PersistedState.Device(old))
            case .deviceRemoved(let old) where old.active: before.append(PersistedState.Device(old))
            default: break
            }
        }
        let running = Set(pending.devices.map(\.key))
        let previous = PersistedState(bootID: known, active: before.filter { !running.contains($0.key) })
        let tasks = plan(previous, index.snapshot.state, boot: now, reconnected: true)
        markRestoring(tasks)
        return tasks
    }

    private func markRestoring(_ tasks: [RestoreTask]) {
        guard currentConfig.acts(writable: writable) else { return }
        for task in tasks { restoring.insert(task.device.key) }
    }

    /// What the state file gets now, or nil to keep the last good file: while the index is stale (libvirt
    /// lost), and while it shows a boot not yet planned for (a resync after a reboot, whose emptied active
    /// set written under the old boot would leave the next start nothing to restore).
    static func persisted(_ snapshot: IndexSnapshot, plannedBoot: String?, pending: [PersistedState.Device]) -> PersistedState? {
        guard snapshot.status.synced else { return nil }
        if let seen = snapshot.status.host?.boot?.persisted, seen != plannedBoot { return nil }
        let active = snapshot.state.devices.values.filter(\.active).map(PersistedState.Device.init)
        return PersistedState(bootID: plannedBoot ?? HostBoot.unknown, active: active, pending: pending)
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

    // MARK: start-up

    private func loadPrevious() -> PersistedState? {
        switch store.load() {
        case .missing:
            logger.info("no state file at \(store.path): first run, nothing to restore")
            return nil
        case .loaded(let state):
            return state
        case .newer(let state, let version, let keptAt):
            logger.warning("state file \(store.path) is format \(version), from a newer mdevmon (this one reads and writes \(PersistedState.currentVersion)): using the fields this version knows; the original is kept at \(keptAt ?? "nowhere (the directory is not writable)")")
            return state
        case .unsupported(let version, let reason, let movedTo):
            logger.error("state file \(store.path) is format \(version), from a newer mdevmon, and this one cannot read it (\(reason)): nothing to restore from it; moved aside to \(movedTo ?? "nowhere (move failed)") for an mdevmon that reads format \(version)")
            return nil
        case .corrupt(let reason, let movedTo):
            logger.warning("state file \(store.path) is unreadable (\(reason)); moved aside to \(movedTo ?? "nowhere (move failed)"), starting fresh")
            return nil
        }
    }

    /// What to restore, from the previous run's state (or the active set before a reconnect) and the index
    /// after the sync.
    private func plan(_ previous: PersistedState?, _ state: IndexState, boot: String?, reconnected: Bool = false) -> [RestoreTask] {
        let cfg = currentConfig
        guard let previous, cfg.restore.enabled else { return [] }
        let rebooted: Bool
        let was = HostBoot(persisted: previous.bootID), now = boot.flatMap(HostBoot.init(persisted:))
        if let was, let now, let later = now.isLater(than: was) {
            rebooted = later
        } else {
            // Only what a previous run had not finished resumes.
            rebooted = false
            let host = index.snapshot.status.host?.hostname ?? "the libvirt host"
            if let was, let now {
                logger.notice("the state file's \(was) and \(host)'s \(now) are not comparable (the libvirt URI moved between a local and a remote host): no reboot is assumed")
            } else if now == nil {
                logger.warning("cannot tell which boot \(host) is in (libvirt reports neither a boot id nor CPU times): no reboot is assumed, nothing is restored")
            } else {
                logger.notice("the state file does not say which boot of \(host) it was written in: no reboot is assumed")
            }
        }
        // Same boot: only resume what a previous run (killed mid-restore) had not finished.
        // After a reboot, devices still pending from before it count as active before it too.
        let activeKeys = Set(previous.active.map(\.key))
        let input = PersistedState(bootID: previous.bootID, active: rebooted ? previous.active + previous.pending.filter { p in
            !activeKeys.contains(p.key)
        } : previous.pending)
        let plan = RestorePlanner.plan(previous: input, state: state, config: cfg, includeAutostart: rebooted)
        if rebooted {
            let when = reconnected ? "while libvirt was unreachable" : "since the last run"
            logger.notice("host\(index.snapshot.status.host?.hostname.map { " \($0)" } ?? "") rebooted \(when) (\(was.map { "\($0)" } ?? previous.bootID) → \(now.map { "\($0)" } ?? HostBoot.unknown)): \(plan.tasks.count) mdevs to restore")
        } else if !previous.pending.isEmpty {
            logger.notice("resuming \(plan.tasks.count) restores a previous run had not finished")
        }
        for (device, why) in plan.skipped {
            logger.notice("not restoring mdev \(device.uuid) on \(device.parent): \(why)", metadata: RestoreRunner.fields(device))
        }
        return plan.tasks
    }
}
