import Logging
import Monitor
import ServiceLifecycle

/// Brings mdevs back after a reboot: each device waits (without polling) for its parent, then is
/// started or re-created with capped exponential retries until a deadline.
///
/// Bounded: waiting for a parent costs a parked task and nothing else; talking to libvirt takes one of
/// `restore.max_concurrent` slots, so 500 restores after a reboot are at most that many RPCs at once.
///
/// A restore that may not act (a dry run, or a device the configuration no longer owns) parks until the
/// next reload and stays in the plan: switching a dry run to real mode acts on exactly what it said.
final class RestoreRunner: Sendable {
    private let wakeups: RestoreWakeups
    private let index: DeviceIndex
    private let actions: any DeviceActions
    private let config: @Sendable () -> PolicyConfig
    private let metrics: PolicyMetrics
    private let logger: Logger
    private let slots: AsyncSemaphore
    private let restoring: RestoringSet
    private let restoringChanged: @Sendable (String) -> Void
    /// Whether the libvirt connection may change devices (opened for an acting configuration).
    private let writable: Bool

    /// - Parameters:
    ///   - wakeups: signalled by the change consumer (parents, devices, resyncs) and by reloads.
    ///   - restoring: the devices whose restore is under way (not parked, not ended), for the blockers.
    ///   - restoringChanged: called when an mdev's UUID enters or leaves `restoring`.
    ///   - writable: whether the libvirt connection may change devices.
    init(index: DeviceIndex, actions: any DeviceActions, config: @escaping @Sendable () -> PolicyConfig,
         wakeups: RestoreWakeups, restoring: RestoringSet, restoringChanged: @escaping @Sendable (String) -> Void,
         writable: Bool, metrics: PolicyMetrics, logger: Logger) {
        self.index = index
        self.actions = actions
        self.config = config
        self.wakeups = wakeups
        self.restoring = restoring
        self.restoringChanged = restoringChanged
        self.writable = writable
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

    /// - Returns: true when the restore reached an outcome, false when it was cancelled first (it then
    ///   stays in the plan, as do parked ones).
    func restore(_ task: RestoreTask) async -> Bool {
        let device = task.device
        // A restore that cannot act (a dry run) brings nothing back: its domains keep their real blockers.
        if config().acts(writable: writable) { setRestoring(device, true) }
        guard await waitForParent(task) else {
            setRestoring(device, false)
            return false
        }
        // Already active (mdevctl's udev rule started it during the wait): `act` skips it, with no grace first.
        if task.reason == .autostart && index.snapshot.state.current(device)?.active != true {
            // Counted from now, when the parent can host it: mdevctl's udev rule normally starts it first.
            let grace = config().restore.autostartGracePeriod
            logger.info("mdev \(device.uuid): its parent can host it; giving autostart \(grace) to start it first", metadata: Self.fields(device))
            try? await Task.sleep(for: grace)
        }
        let outcome = await act(task)
        // A started device stays `restoring` until the index shows it active (the change consumer takes it
        // out then): a blocker between libvirt's answer and its event would be a false alarm.
        if outcome != .restored { setRestoring(device, false) }
        return outcome != .cancelled
    }

    /// Takes a device out of `restoring` once the index shows it active.
    func becameActive(_ key: MdevKey) {
        if restoring.remove(key) { restoringChanged(key.uuid) }
    }

    /// Waits until the device's parent can host it: with `wait_for_type` (the default) until the index shows
    /// the parent offering the device's type with an instance available, otherwise until the parent device
    /// exists. The index change that shows it (the parent's CREATED, or the UPDATE libvirt sends when a
    /// vendor driver registers its types) wakes it, never a poll. While libvirt still files the device
    /// under its placeholder parent, the real parent is not there yet either. Waiting is not failing:
    /// nothing is counted, and the journal hears of it once per kind of wait, at info.
    /// - Returns: false when cancelled first.
    private func waitForParent(_ task: RestoreTask) async -> Bool {
        let device = task.device
        let fields = Self.fields(device)
        var announced: RestoreWaiting.Reason?
        var lastCheckError: String?
        var checkDelay = config().restore.retryInitial
        defer { metrics.setWaiting(device.key, nil) }
        while !Self.stopping {
            let state = index.snapshot.state
            let (now, parent, unparented) = RestoreWaiting.resolve(device, in: state)
            let waiter = wakeups.register(unparented ? .anyParent : .parent(parent))
            var reason = RestoreWaiting.Reason.parent
            if now?.active == true {
                // Someone else started it (mdevctl's udev rule, on the kernel's uevent, before libvirt's UPDATE
                // shows the types): the instance it took may have been the last; `act` skips it.
                wakeups.cancel(waiter)
                return true
            } else if unparented {
                // Waits for any new parent or device below.
            } else if config().restore.waitForType {
                // libvirt lists only parents that offer mdev types: a GPU whose driver is not up is not here.
                guard let missing = RestoreWaiting.typeReason(parent: parent, mdevType: device.mdevType, in: state) else {
                    wakeups.cancel(waiter)
                    return true
                }
                reason = missing
            } else {
                do {
                    let exists = try await slots.holding { try await self.actions.nodeDeviceExists(parent) }
                    if exists { wakeups.cancel(waiter); return true }
                } catch is CancellationError {
                    wakeups.cancel(waiter)
                    return false
                } catch {
                    // A libvirt error is that error, not "the parent is missing": say so, once per kind,
                    // and check again after a backoff (no change may ever come to wake this restore).
                    let text = "\(error)"
                    if text != lastCheckError {
                        lastCheckError = text
                        logger.warning("mdev \(device.uuid): cannot check whether parent \(parent) exists, checking again in \(checkDelay): \(error)",
                                       metadata: fields.merging(LogKey.fields(of: error)) { $1 })
                    }
                    wakeups.cancel(waiter)
                    try? await Task.sleep(for: checkDelay)
                    checkDelay = min(checkDelay * 2, config().restore.retryMax)
                    continue
                }
            }
            metrics.setWaiting(device.key, RestoreWaiting(uuid: device.uuid, parent: unparented ? device.parent : parent,
                                                          mdevType: device.mdevType, reason: reason))
            if announced != reason {
                let what = switch reason {
                case .parent: "parent \(unparented ? "(not yet known)" : parent) to appear"
                case .type: "parent \(parent) to offer type \(device.mdevType)"
                case .instance: "parent \(parent) to have an instance of type \(device.mdevType) available"
                }
                logger.info("mdev \(device.uuid): waiting for \(what)", metadata: fields)
                announced = reason
            }
            await wakeups.wait(waiter)
        }
        return false
    }

    /// Why a restore may not act now; it then parks until the next reload, and stays in the plan.
    private enum Hold: Equatable {
        case dryRun, notOwned
        /// Real mode after a dry run, reloaded: the connection was opened read-only and stays so until
        /// mdevmon restarts (which resumes the plan).
        case readOnly
    }

    private enum Outcome {
        /// libvirt started or created it.
        case restored
        /// Skipped or given up.
        case ended
        case cancelled
    }

    /// Starts or re-creates the device, retrying until the deadline.
    private func act(_ task: RestoreTask) async -> Outcome {
        let device = task.device
        let fields = Self.fields(device)
        var started = ContinuousClock.now
        var delay = config().restore.retryInitial
        var attempt = 0
        var held: Hold?
        while !Self.stopping {
            let cfg = config()
            // Registered before the checks, so a reload between a check and the wait is not missed.
            let reload = wakeups.register(.reload)
            if index.snapshot.state.current(device)?.active == true {
                // Someone else (mdevctl's udev rule, an operator) brought it up: nothing to do, nothing failed.
                wakeups.cancel(reload)
                logger.info("mdev \(device.uuid) is already active; nothing to do", metadata: fields)
                metrics.count(policy: "restore", action: task.action, result: "skipped")
                return .ended
            }
            let users = index.snapshot.state.domainsUsing(device.uuid)
            if !users.isEmpty {
                // Policies never touch an mdev a running domain holds, whatever the index says of it.
                wakeups.cancel(reload)
                logger.notice("mdev \(device.uuid) is in use by running domain \(users.sorted().joined(separator: ", ")); not restoring",
                              metadata: fields)
                metrics.count(policy: "restore", action: task.action, result: "skipped")
                return .ended
            }
            let hold: Hold? = !cfg.owns(uuid: device.uuid, parent: device.parent, mdevType: device.mdevType) ? .notOwned
                : cfg.dryRun ? .dryRun : !writable ? .readOnly : nil
            if let hold {
                // Said once per hold, however many reloads keep it.
                if hold != held {
                    setRestoring(device, false)
                    switch hold {
                    case .notOwned:
                        logger.notice("mdev \(device.uuid) is no longer owned (config reloaded); not restoring while it is not, kept in the plan",
                                      metadata: fields)
                    case .dryRun:
                        logger.notice("dry run: would \(task.action) mdev \(device.uuid) on \(device.parent) (\(task.reason.rawValue)); kept in the plan",
                                      metadata: MessageID.restoreAttempted.metadata.merging(fields) { $1 })
                        metrics.count(policy: "restore", action: task.action, result: "dry_run")
                    case .readOnly:
                        logger.notice("mdev \(device.uuid): not restoring yet, the libvirt connection is read-only until mdevmon restarts; kept in the plan",
                                      metadata: fields)
                    }
                    held = hold
                }
                await wakeups.wait(reload)
                continue
            }
            wakeups.cancel(reload)
            if held != nil {
                // Acting from now on: the deadline counts from here, not from when the restore parked.
                held = nil
                setRestoring(device, true)
                started = .now
            }
            attempt += 1
            logger.notice("restoring mdev \(device.uuid) on \(device.parent): \(task.action), attempt \(attempt) (\(task.reason.rawValue))",
                          metadata: MessageID.restoreAttempted.metadata.merging(fields) { $1 })
            do {
                try await slots.holding {
                    // SIGTERM may have come while this restore waited for its slot: nothing new starts after it.
                    guard !Self.stopping else { throw CancellationError() }
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
                return .restored
            } catch is CancellationError {
                // Shut down while waiting for a slot (nothing was started), or while libvirt had not answered
                // the start: the restore stays in the plan, and the next start sees whether it took.
                return .cancelled
            } catch {
                // Someone else (mdevctl's udev rule) may have won the race: that is not a failure.
                if index.snapshot.state.current(device)?.active == true { continue }
                metrics.count(policy: "restore", action: task.action, result: "failure")
                let elapsed = ContinuousClock.now - started
                if elapsed + delay > cfg.restore.deadline {
                    logger.error("giving up on mdev \(device.uuid) on \(device.parent) after \(attempt) attempts: \(error)",
                                 metadata: MessageID.restoreGaveUp.metadata.merging(fields) { $1 }.merging(LogKey.fields(of: error)) { $1 })
                    metrics.count(policy: "restore", action: task.action, result: "gave_up")
                    return .ended
                }
                logger.warning("could not \(task.action) mdev \(device.uuid) on \(device.parent) (attempt \(attempt)), retrying in \(delay): \(error)",
                               metadata: MessageID.restoreFailed.metadata.merging(fields) { $1 }.merging(LogKey.fields(of: error)) { $1 })
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, cfg.restore.retryMax)
            }
        }
        return .cancelled
    }

    /// Shutdown has begun (SIGTERM reaches the runner as a graceful shutdown, then as cancellation).
    private static var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    private func setRestoring(_ device: PersistedState.Device, _ on: Bool) {
        if on ? restoring.insert(device.key) : restoring.remove(device.key) { restoringChanged(device.uuid) }
    }

    static func fields(_ d: PersistedState.Device) -> Logger.Metadata {
        [LogKey.mdevUUID: .string(d.uuid), LogKey.mdevParent: .string(d.parent), LogKey.mdevType: .string(d.mdevType)]
    }
}
