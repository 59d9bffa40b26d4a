public import Logging
public import ServiceLifecycle
import Synchronization

/// How the Monitor connects and retries.
public struct MonitorConfiguration: Sendable {
    public var uri: String
    public var readOnly: Bool
    /// First reconnect delay; doubles per failure up to `maxBackoff`.
    public var initialBackoff: Duration
    public var maxBackoff: Duration

    public init(uri: String = "qemu:///system", readOnly: Bool = true,
                initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30)) {
        self.uri = uri
        self.readOnly = readOnly
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }
}

/// Keeps the `DeviceIndex` in step with libvirt: connect, register callbacks, full sync, then apply
/// each event by fetching only what it concerns. On connection loss it marks the index stale,
/// reconnects with capped exponential backoff and resyncs, reporting the difference as ordinary changes.
///
/// It owns the libvirt connection (others borrow it through `withConnection`, under a lease) and
/// applies changes to the index; it does not narrate them (`ChangeJournal` does, as a subscriber).
public final class MonitorService: Service, Sendable {
    public let index: DeviceIndex
    private let configuration: MonitorConfiguration
    private let connector: any LibvirtConnector
    private let logger: Logger
    private let current = Mutex<(any LibvirtConnection)?>(nil)
    private let firstSync = Latch()
    /// Every libvirt call this service makes or lends out, while it runs (`LibvirtCallWatch` watches them).
    public let calls = LibvirtCalls()

    public convenience init(configuration: MonitorConfiguration, connector: any LibvirtConnector = LibvirtConnectorImpl(),
                index: DeviceIndex? = nil, logger: Logger) {
        self.init(configuration: configuration, connector: connector, index: index, logger: logger, afterConnect: { _ in })
    }

    init(configuration: MonitorConfiguration, connector: any LibvirtConnector, index: DeviceIndex?, logger: Logger,
         afterConnect: @escaping @Sendable (any LibvirtConnection) throws -> Void) {
        self.afterConnect = afterConnect
        self.configuration = configuration
        self.connector = connector
        self.index = index ?? DeviceIndex(uri: configuration.uri)
        var logger = logger
        logger[metadataKey: LogKey.libvirtURI] = .string(configuration.uri)
        self.logger = logger
    }

    /// Returns once the first full sync has completed (or the task is cancelled).
    public func waitForFirstSync() async { await firstSync.wait() }

    /// Runs `body` with the live connection, off the cooperative pool, under a lease: the Monitor may
    /// close the connection meanwhile (it was lost), but cannot free it under `body`. A cancelled caller
    /// stops waiting at once (a restore cut short by SIGTERM while libvirtd hangs in mdevctl); the call
    /// itself ends on its own thread, and what it returns is dropped.
    /// - Parameter operation: What `body` asks libvirt, as a stuck call is reported.
    /// - Throws: `MonitorError.notConnected` while disconnected, `CancellationError`, or what `body` throws.
    public func withConnection<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (any LibvirtConnection) throws -> T) async throws -> T {
        guard let connection = current.withLock({ $0 }) else { throw MonitorError.notConnected(configuration.uri) }
        return try await Blocking.runAbandoningOnCancel { [calls] in
            try calls.tracking(operation, kind: .action) { try connection.withLease { try body(connection) } }
        } abandon: { _ in }
    }

    /// How much the current connection's event queue coalesced (nil while disconnected).
    public var eventQueueStats: EventQueueStats? { current.withLock { $0?.events.stats } }

    /// Test seam: runs after each connect, before the full sync; throwing takes the failed-sync path.
    let afterConnect: @Sendable (any LibvirtConnection) throws -> Void

    public func run() async throws {
        var backoff = configuration.initialBackoff
        var everConnected = false
        var outage = OutageLog()
        if let notice = LocalOnlyFeature.remoteNotice(uri: configuration.uri) {
            logger.notice("\(notice)")
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                // A connect to a libvirtd that does not answer can block for long: shutdown must not wait for it.
                let connection = try await cancelWhenGracefulShutdown { [configuration, connector, calls] in
                    try await Blocking.runAbandoningOnCancel {
                        try calls.tracking("connect to \(configuration.uri)", kind: .connect) {
                            try connector.connect(uri: configuration.uri, readOnly: configuration.readOnly)
                        }
                    } abandon: { $0.close() }
                }
                await index.recordConnect(host: connection.host, reconnect: everConnected)
                everConnected = true
                outage = OutageLog()
                current.withLock { $0 = connection }
                if let problem = connection.configWatchProblem {
                    logger.warning("cannot watch libvirt's domain configuration files (\(problem)): a --config attach or detach, or virsh autostart, shows only at the domain's next event",
                                   metadata: MessageID.libvirtOperationFailed.metadata)
                }
                let outcome: Result<String, any Error>
                do {
                    try afterConnect(connection)
                    try await sync(connection)
                    backoff = configuration.initialBackoff
                    outcome = .success(try await cancelWhenGracefulShutdown { try await self.consume(connection) })
                } catch {
                    outcome = .failure(error)
                }
                current.withLock { $0 = nil }
                // Deregistering talks to libvirtd: off the cooperative pool, like every other call.
                _ = try? await Blocking.run { [calls] in calls.tracking("close the connection", kind: .close) { connection.close() } }
                let reason = try outcome.get()
                await index.markDisconnected(reason: reason)
                // Reconnect at once after a clean loss; backoff applies to failed attempts.
                continue
            } catch is CancellationError {
                break
            } catch {
                let message = "\(error)"
                await index.markDisconnected(reason: message)
                // Once per outage (and when the reason changes, or every 10 minutes), not once per retry.
                // After a loss the connection-lost entry already warned; a start-up failure is an error.
                switch outage.record(message, now: .now) {
                case .first, .changed:
                    logger.log(level: everConnected ? .warning : .error,
                               "libvirt unavailable, retrying in \(backoff) (then backing off up to \(configuration.maxBackoff)): \(message)",
                               metadata: MessageID.libvirtOperationFailed.metadata)
                case .reminder(let attempts, let since):
                    logger.log(level: everConnected ? .warning : .error,
                               "libvirt still unavailable after \(attempts) attempts over \(since.formatted(.units(allowed: [.hours, .minutes, .seconds], width: .narrow))): \(message)",
                               metadata: MessageID.libvirtOperationFailed.metadata)
                case .repeated:
                    logger.debug("libvirt unavailable, retrying in \(backoff): \(message)",
                                 metadata: MessageID.libvirtOperationFailed.metadata)
                }
            }
            do {
                // Graceful shutdown must not wait out a long backoff.
                let delay = backoff
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                break
            }
            backoff = min(backoff * 2, configuration.maxBackoff)
        }
        await index.finish()
    }

    private func sync(_ connection: any LibvirtConnection) async throws {
        let result = try await Blocking.run { [calls] in
            try calls.tracking("full sync", kind: .fullSync) { progress in try FullSync.read(from: connection, progress: progress) }
        }
        for problem in result.problems {
            logger.error("skipping device: \(problem)", metadata: MessageID.libvirtOperationFailed.metadata)
        }
        let first = !firstSync.isDone
        let before = index.snapshot
        // Only this task mutates the index, so the state read above is still the index's.
        let state = result.failures.isEmpty ? result.state
            : FullSync.keepingLastKnown(result.failures.keys, from: before.state, in: result.state)
        await index.replace(with: state, failures: result.failures)
        reportFetchFailures(from: before.status.fetchFailures, to: result.failures)
        if first {
            let s = result.state
            let drift = connection.version.readsDefinitions ? "definition drift is read"
                : "definition drift is unknown before libvirt \(LibvirtVersion.definitions)"
            logger.notice(
                "initial sync: \(s.devices.count) mdevs (\(s.activeCount) active), \(s.parents.count) parents, \(s.domains.count) domains; libvirt \(connection.version)\(connection.host.hostname.map { " on \($0)" } ?? ""), \(drift)",
                metadata: MessageID.initialSyncCompleted.metadata)
        }
        firstSync.signal()
    }

    /// Applies events until the connection closes; returns why it closed.
    private func consume(_ connection: any LibvirtConnection) async throws -> String {
        var waited = connection.events.stats.waited
        while let (work, counts) = await connection.events.next() {
            let now = connection.events.stats.waited
            let wait = now - waited
            calls.addQueueWait(wait)
            waited = now
            let began = ContinuousClock.now, behind = logger.logLevel <= .debug ? connection.events.waiting : 0
            // Where the time from libvirt's event to the index goes, one line per object fetched (off unless
            // --log.level debug).
            defer {
                if logger.logLevel <= .debug, wait.count > 0 {
                    let handled = Int(((ContinuousClock.now - began).seconds * 1000).rounded())
                    logger.debug("event work \(work): waited \(Int((wait.seconds * 1000).rounded())) ms in the queue, fetched and applied in \(handled) ms; \(behind) objects queued behind it")
                }
            }
            switch work {
            case .closed(let reason):
                await index.mutate(events: counts) { _ in [] }
                return reason
            case .resync(let reasons):
                // A source lost track of what changed: read libvirt's truth instead.
                for reason in reasons.sorted(by: { "\($0)" < "\($1)" }) { logResync(reason, capacity: connection.events.capacity) }
                await index.mutate(events: counts) { _ in [] }
                try await sync(connection)
            case .nodeDevice(let name, let kinds):
                await handleNodeDevice(name, kinds, counts, connection)
            case .domain(let name, let kinds):
                await handleDomain(name, kinds, counts, connection)
            }
        }
        try Task.checkCancellation()
        return "event stream ended"
    }

    private func logResync(_ reason: ResyncReason, capacity: Int) {
        switch reason {
        case .overflow:
            logger.notice("more objects changed at once than the event queues hold (\(capacity) here); resyncing")
        case .configDirectoryLost(let directory, let watching):
            let meanwhile = "a --config attach or detach, or virsh autostart, shows only at the domain's next event"
            logger.warning(watching
                ? "libvirt's domain configuration directory \(directory) went away: watching for it to come back; meanwhile \(meanwhile); resyncing"
                : "libvirt's domain configuration directory \(directory) went away, and so did its parent: not watched until mdevmon reconnects to libvirt; \(meanwhile); resyncing",
                metadata: MessageID.libvirtOperationFailed.metadata)
        case .configDirectoryBack(let directory):
            logger.notice("libvirt's domain configuration directory \(directory) is there again (re-created or replaced) and watched; resyncing for what changed in between")
        }
    }

    private func handleNodeDevice(_ name: String, _ kinds: Set<NodeDeviceEventKind>, _ counts: [EventCounterKey: Int],
                                  _ connection: any LibvirtConnection) async {
        do {
            // Creating or removing an mdev in sysfs moves its parent's available instances; defining,
            // undefining or updating one only changes libvirt's (mdevctl's) records, so the parent is not
            // re-read (libvirt 11.3 sends an UPDATE for each of a parent's mdevs around every CREATED).
            let refreshParent = kinds.contains(.created) || kinds.contains(.deleted)
            // The device the index knows by this name: a transient mdev that vanished freed an instance on its
            // parent, also when an UPDATE's fetch is the first to find it gone (libvirt 11.3 drops it from its
            // list before the DELETED, whose fetch then no longer knows the parent).
            let known = index.snapshot.state.device(named: name)
            // nil record: the device vanished between the event and the fetch.
            let fetched = try await Blocking.run { [calls] in
                try calls.tracking("fetch node device \(name)", kind: .fetchNodeDevice) {
                    try Self.fetchNodeDevice(name, refreshParent: refreshParent, known: known, from: connection)
                }
            }
            if let parent = fetched.parentRead {
                // libvirt sends nothing for the parents that share the pool (SR-IOV vGPU VFs): re-read them too.
                for sibling in index.snapshot.state.parents(sharingPoolWith: parent.name) {
                    connection.events.requestRefresh(nodeDevice: sibling)
                }
            }
            await index.mutate(events: counts) { state in
                let (parsed, flags, definedConfig, parent) = (fetched.parsed, fetched.flags, fetched.definedConfig, fetched.parent)
                guard let parsed else {
                    return state.removeDevice(named: name) + state.removeParent(named: name)
                        + (parent.map { state.upsertParent($0) } ?? [])
                }
                var changes: [IndexChange] = []
                switch parsed {
                case .mdev(let def): changes += state.upsertDevice(def, flags: flags, definedConfig: definedConfig)
                case .parent(let parent): changes += state.upsertParent(parent)
                // A parent whose driver unbound (or unregistered its types) offers none now: no longer a parent.
                case .other: changes += state.removeParent(named: name)
                }
                if let parent { changes += state.upsertParent(parent) }
                return changes
            }
            // The marks follow the data: an object never reads as healed while the index holds its old state.
            await recordFetch(LibvirtObject(.nodeDevice, name), failure: nil)
            if let parent = fetched.parentRead {
                await recordFetch(LibvirtObject(.nodeDevice, parent.name), failure: parent.error)
            }
        } catch {
            await index.mutate(events: counts) { _ in [] }
            // Events queued before a loss fail on the dead connection; the close event reports the loss.
            guard connection.isAlive else {
                logger.debug("event for node device \(name) not applied, the connection is gone: \(error)")
                return
            }
            if let error = error as? LibvirtError {
                await recordFetch(LibvirtObject(.nodeDevice, name), failure: error)
                return
            }
            logger.error("event for node device \(name) not applied: \(error)",
                         metadata: Self.errorFields(error, LogKey.mdevName, name))
        }
    }

    /// What an event's fetch of a node device found, with its parent when that was re-read.
    private struct FetchedNodeDevice: Sendable {
        /// nil: the device no longer exists.
        var parsed: ParsedNodeDevice?
        var flags: DeviceFlags
        var definedConfig: MdevConfig?
        var parent: ParentDevice?
        /// The parent re-read, and libvirt's error when that read failed (its mark is set or cleared).
        var parentRead: (name: String, error: LibvirtError?)?
    }

    /// Fetches `name` and, when its change moves the parent's available instances, the parent. A parent
    /// libvirt fails to give does not keep the device's own change out of the index.
    private static func fetchNodeDevice(_ name: String, refreshParent: Bool, known: MdevDevice?,
                                        from connection: any LibvirtConnection) throws -> FetchedNodeDevice {
        let record = try connection.nodeDevice(named: name)
        var fetched = FetchedNodeDevice(
            parsed: try record.map { try NodeDeviceXML.parse($0.xml, fallbackName: name) },
            flags: record?.flags ?? DeviceFlags(active: false, persistent: false, autostart: false),
            definedConfig: NodeDeviceXML.config(ofDefinition: record?.definedXML))
        // An mdev's start or stop moves its parent's available instances: refresh the parent too.
        var parentName: String?
        if refreshParent, case .mdev(let def)? = fetched.parsed {
            parentName = def.parent
        } else if refreshParent || (record == nil && known?.active == true) {
            parentName = known?.parent
        }
        guard let parentName else { return fetched }
        do {
            if let parentRecord = try connection.nodeDevice(named: parentName),
               case .parent(let parent) = try NodeDeviceXML.parse(parentRecord.xml, fallbackName: parentName) {
                fetched.parent = parent
            }
            fetched.parentRead = (parentName, nil)
        } catch let error as LibvirtError where connection.isAlive {
            fetched.parentRead = (parentName, error)
        }
        return fetched
    }

    private func handleDomain(_ name: String, _ kinds: Set<DomainEventKind>, _ counts: [EventCounterKey: Int],
                              _ connection: any LibvirtConnection) async {
        do {
            let record = try await Blocking.run { [calls] in try calls.tracking("fetch domain \(name)", kind: .fetchDomain) { try connection.domain(named: name) } }
            let domain = try record.map { record throws(XMLParseError) in try DomainInfo(record) }
            await index.mutate(events: counts) { state in
                if let domain { state.upsertDomain(domain) } else { state.removeDomain(named: name) }
            }
            // After the data: the domain never reads as healed while the index holds its old state.
            await recordFetch(LibvirtObject(.domain, name), failure: nil)
            // Not an index change (the device simply stays), so no subscriber would say it: the failed unplug
            // is libvirt's news, told here once per batch of the domain's events. The event does not say
            // which device (mdevmon keeps no aliases), so only a domain holding mdevs is worth a warning.
            if kinds.contains(.deviceRemovalFailed), let held = domain?.liveMdevUUIDs, !held.isEmpty {
                logger.warning(
                    "a live device detach from domain \(name) failed (libvirt DEVICE_REMOVAL_FAILED); its live mdevs: [\(held.joined(separator: ", "))]",
                    metadata: MessageID.deviceRemovalFailed.metadata.merging([LogKey.domainName: .string(name)]) { $1 })
            }
        } catch {
            await index.mutate(events: counts) { _ in [] }
            guard connection.isAlive else {
                logger.debug("event for domain \(name) not applied, the connection is gone: \(error)")
                return
            }
            if let error = error as? LibvirtError {
                await recordFetch(LibvirtObject(.domain, name), failure: error)
                return
            }
            logger.error("event for domain \(name) not applied: \(error)",
                         metadata: Self.errorFields(error, LogKey.domainName, name))
        }
    }

    /// Marks (or, with nil, clears) an object libvirt failed to give on an event's fetch, journaling the change.
    private func recordFetch(_ object: LibvirtObject, failure: LibvirtError?) async {
        let before = index.snapshot.status.fetchFailures
        guard before[object] != failure?.message else { return }
        var after = before
        after[object] = failure?.message
        // Journaled first: whoever sees the status change finds the journal already saying so.
        reportFetchFailures(from: before, to: after)
        await index.recordFetchFailures(after)
    }

    /// Journals each object that started or stopped failing to read: once, not at every sync or event.
    private func reportFetchFailures(from before: [LibvirtObject: String], to after: [LibvirtObject: String]) {
        for (object, message) in after.sorted(by: { $0.key < $1.key }) where before[object] == nil {
            var fields = MessageID.libvirtOperationFailed.metadata
            fields[object.logKey] = .string(object.name)
            fields[LogKey.error] = .string(message)
            logger.error("libvirt cannot read \(object): \(message); its last known state is kept, marked in mdev_libvirt_fetch_failed, until it reads again",
                         metadata: fields)
        }
        for object in before.keys.sorted() where after[object] == nil {
            logger.notice("libvirt reads \(object) again", metadata: [object.logKey: .string(object.name)])
        }
    }

    /// The journal fields of a failed libvirt operation: libvirt's own code and message, and the object.
    static func errorFields(_ error: any Error, _ key: String, _ value: String) -> Logger.Metadata {
        var fields = MessageID.libvirtOperationFailed.metadata
        fields[key] = .string(value)
        fields.merge(LogKey.fields(of: error)) { $1 }
        return fields
    }
}

/// Decides which failed connection attempts of one outage are worth a log line.
struct OutageLog {
    enum Verdict: Equatable {
        case first, changed, repeated
        case reminder(attempts: Int, since: Duration)
    }

    static let reminderInterval: Duration = .seconds(600)
    private var started: ContinuousClock.Instant?
    private var lastLogged: ContinuousClock.Instant?
    private var lastMessage: String?
    private var attempts = 0

    mutating func record(_ message: String, now: ContinuousClock.Instant) -> Verdict {
        attempts += 1
        defer { lastMessage = message }
        guard let started, let lastLogged else {
            self.started = now
            self.lastLogged = now
            return .first
        }
        if message != lastMessage {
            self.lastLogged = now
            return .changed
        }
        if now - lastLogged >= Self.reminderInterval {
            self.lastLogged = now
            return .reminder(attempts: attempts, since: now - started)
        }
        return .repeated
    }
}

/// Errors the Monitor raises itself (libvirt's own are `LibvirtError`).
public enum MonitorError: Error, CustomStringConvertible, Sendable {
    case notConnected(String)

    public var description: String {
        switch self {
        case .notConnected(let uri): "not connected to libvirt at \(uri)"
        }
    }
}

