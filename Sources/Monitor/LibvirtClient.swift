internal import CLibvirt
import Foundation
import Synchronization

/// Opens real libvirt connections.
public struct LibvirtConnectorImpl: LibvirtConnector {
    private let observe: (@Sendable (LibvirtEvent) -> Void)?

    /// - Parameter observe: sees every event in libvirt's callback, before coalescing (benchmarks).
    public init(observe: (@Sendable (LibvirtEvent) -> Void)? = nil) { self.observe = observe }

    public func connect(uri: String, readOnly: Bool) throws -> any LibvirtConnection {
        try LibvirtClient(uri: uri, readOnly: readOnly, events: EventQueue(observe: observe))
    }

    /// A connection for one read and `close()` (`mdevmon list`, `mdevmon doctor`, the host checks'
    /// probe): keepalive where the driver has it, no event callbacks and no watch of the domain
    /// configuration directory, so its `events` never yield.
    public static func connectOnce(uri: String, readOnly: Bool) throws -> any LibvirtConnection {
        try LibvirtClient(uri: uri, readOnly: readOnly, watch: false)
    }
}

/// Where a callback delivers its copied values. Retained by libvirt through `opaque` until the free
/// callback; `live` counts instances so tests can prove a closed connection left none behind.
final class EventSink: Sendable {
    static let live = Atomic<Int>(0)
    let queue: EventQueue
    init(_ queue: EventQueue) {
        self.queue = queue
        Self.live.add(1, ordering: .relaxed)
    }
    deinit { Self.live.subtract(1, ordering: .relaxed) }

    static func retained(_ queue: EventQueue) -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(EventSink(queue)).toOpaque()
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> EventSink? {
        opaque.map { Unmanaged<EventSink>.fromOpaque($0).takeUnretainedValue() }
    }

    /// libvirt's free callback for every registration.
    static let release: virFreeCallback = { opaque in
        if let opaque { Unmanaged<EventSink>.fromOpaque(opaque).release() }
    }
}

/// The close callback. One function for registering and unregistering: libvirt compares the pointer and
/// refuses to unregister a different one, which would leak the connection (the registration holds a
/// reference on it), its libvirtd client and this sink.
private let closeCallback: virConnectCloseFunc = { _, reason, opaque in
    EventSink.from(opaque)?.queue.push(.connectionClosed(reason: LibvirtClient.closeReason(reason)))
}

/// A libvirt connection with node-device and domain callbacks registered, or for one read none. The only
/// type that calls libvirt's connection APIs.
///
/// Ownership: the Monitor owns the connection and calls `close()`; a borrower on another thread (a policy
/// action) holds a counted lease (`virConnectRef`) for the duration of its call, so the owner's close
/// cannot free the connection under it. libvirt disposes of the connection when the last one lets go.
final class LibvirtClient: LibvirtConnection, @unchecked Sendable {
    // @unchecked: `conn` is immutable after init and libvirt's connection API is thread-safe;
    // the mutable callback ids are guarded by `state`.
    let uri: String
    let events: EventQueue
    let version: LibvirtVersion
    let host: WatchedHost
    private let conn: virConnectPtr
    private struct State {
        var nodeDeviceCallbacks: [Int32] = []
        var domainCallbacks: [Int32] = []
        var configWatch: DomainConfigWatch?
        var configWatchProblem: String?
        var closeRegistered = false
        var closed = false
        var leases = 0
    }
    private let state = Mutex(State())

    /// - Parameter watch: whether to register the event callbacks and the configuration watch; without
    ///   them the connection serves one read (`LibvirtConnectorImpl.connectOnce`).
    init(uri: String, readOnly: Bool, events: EventQueue = EventQueue(), watch: Bool = true) throws {
        // Also for a connection without callbacks: libvirt wants the event implementation registered
        // before the process's first open, and keepalive runs on the loop.
        LibvirtEventLoop.ensureRunning()
        self.uri = uri
        self.events = events
        let opened = uri.withCString { readOnly ? virConnectOpenReadOnly($0) : virConnectOpen($0) }
        guard let opened else { throw Self.lastError(operation: "connect to", object: uri) }
        conn = opened
        var encoded: UInt = 0
        version = virConnectGetLibVersion(opened, &encoded) == 0 ? LibvirtVersion(encoded: UInt64(encoded)) : .unknown
        host = Self.watchedHost(opened, uri: uri)
        do {
            try enableKeepAlive(required: watch)
            if watch { try register() }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    // MARK: callbacks

    /// Keepalive notices a dead daemon even when no RPC is in flight (and fails one a hung daemon never
    /// answers): 5 s interval, 3 missed.
    /// - Parameter required: false for one read, which works without it (libvirt's `test` driver has none).
    private func enableKeepAlive(required: Bool) throws {
        if virConnectSetKeepAlive(conn, 5, 3) < 0 {
            let error = Self.lastError(operation: "enable keepalive on", object: uri)
            if required { throw error }
        }
    }

    private func register() throws {
        let closeSink = EventSink.retained(events)
        if virConnectRegisterCloseCallback(conn, closeCallback, closeSink, EventSink.release) < 0 {
            let error = Self.lastError(operation: "register close callback on", object: uri)
            EventSink.release(closeSink)
            throw error
        }
        state.withLock { $0.closeRegistered = true }

        typealias Lifecycle = @convention(c) (virConnectPtr?, virNodeDevicePtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Void
        let lifecycle: Lifecycle = { _, dev, event, _, opaque in
            guard let dev, let sink = EventSink.from(opaque), let name = virNodeDeviceGetName(dev) else { return }
            let kind: NodeDeviceEventKind
            switch UInt32(event) {
            case VIR_NODE_DEVICE_EVENT_CREATED.rawValue: kind = .created
            case VIR_NODE_DEVICE_EVENT_DELETED.rawValue: kind = .deleted
            case VIR_NODE_DEVICE_EVENT_DEFINED.rawValue: kind = .defined
            case VIR_NODE_DEVICE_EVENT_UNDEFINED.rawValue: kind = .undefined
            default: kind = .updated
            }
            sink.queue.push(.nodeDevice(name: String(cString: name), kind: kind))
        }
        typealias Generic = @convention(c) (virConnectPtr?, virNodeDevicePtr?, UnsafeMutableRawPointer?) -> Void
        let update: Generic = { _, dev, opaque in
            guard let dev, let sink = EventSink.from(opaque), let name = virNodeDeviceGetName(dev) else { return }
            sink.queue.push(.nodeDevice(name: String(cString: name), kind: .updated))
        }
        try registerNodeDevice(Int32(VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE.rawValue), unsafeBitCast(lifecycle, to: Generic.self))
        try registerNodeDevice(Int32(VIR_NODE_DEVICE_EVENT_ID_UPDATE.rawValue), update)

        typealias DomainLifecycle = @convention(c) (virConnectPtr?, virDomainPtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
        let domainLifecycle: DomainLifecycle = { _, dom, event, _, opaque in
            guard let dom, let sink = EventSink.from(opaque), let name = virDomainGetName(dom) else { return 0 }
            sink.queue.push(.domain(name: String(cString: name), kind: LibvirtClient.domainEventKind(event)))
            return 0
        }
        typealias DomainGeneric = @convention(c) (virConnectPtr?, virDomainPtr?, UnsafeMutableRawPointer?) -> Void
        try registerDomain(Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue), unsafeBitCast(domainLifecycle, to: DomainGeneric.self))

        // A live attach or detach changes only the running domain's live XML: no lifecycle event says so.
        // The three share one signature (the device alias); the alias is not needed, the refetch reads it all.
        typealias DomainDevice = @convention(c) (virConnectPtr?, virDomainPtr?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
        let added: DomainDevice = { _, dom, _, opaque in
            guard let dom, let sink = EventSink.from(opaque), let name = virDomainGetName(dom) else { return }
            sink.queue.push(.domain(name: String(cString: name), kind: .deviceAdded))
        }
        let removed: DomainDevice = { _, dom, _, opaque in
            guard let dom, let sink = EventSink.from(opaque), let name = virDomainGetName(dom) else { return }
            sink.queue.push(.domain(name: String(cString: name), kind: .deviceRemoved))
        }
        let removalFailed: DomainDevice = { _, dom, _, opaque in
            guard let dom, let sink = EventSink.from(opaque), let name = virDomainGetName(dom) else { return }
            sink.queue.push(.domain(name: String(cString: name), kind: .deviceRemovalFailed))
        }
        try registerDomain(Int32(VIR_DOMAIN_EVENT_ID_DEVICE_ADDED.rawValue), unsafeBitCast(added, to: DomainGeneric.self))
        try registerDomain(Int32(VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED.rawValue), unsafeBitCast(removed, to: DomainGeneric.self))
        try registerDomain(Int32(VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED.rawValue),
                           unsafeBitCast(removalFailed, to: DomainGeneric.self))

        if isLocal, let directory = DomainConfigWatch.directory(for: uri) {
            do {
                let watch = try DomainConfigWatch(directory: directory, queue: events)
                state.withLock { $0.configWatch = watch }
            } catch {
                state.withLock { $0.configWatchProblem = error.description }
            }
        }
    }

    private func registerDomain(_ eventID: Int32, _ callback: virConnectDomainEventGenericCallback) throws {
        let sink = EventSink.retained(events)
        let id = virConnectDomainEventRegisterAny(conn, nil, eventID, callback, sink, EventSink.release)
        guard id >= 0 else {
            let error = Self.lastError(operation: "register domain events on", object: uri)
            EventSink.release(sink)
            throw error
        }
        state.withLock { $0.domainCallbacks.append(id) }
    }

    private func registerNodeDevice(_ eventID: Int32, _ callback: virConnectNodeDeviceEventGenericCallback) throws {
        let sink = EventSink.retained(events)
        let id = virConnectNodeDeviceEventRegisterAny(conn, nil, eventID, callback, sink, EventSink.release)
        guard id >= 0 else {
            let error = Self.lastError(operation: "register node-device events on", object: uri)
            EventSink.release(sink)
            throw error
        }
        state.withLock { $0.nodeDeviceCallbacks.append(id) }
    }

    var configWatchProblem: String? { state.withLock { $0.configWatchProblem } }

    /// Whether the domain configuration directory is watched (tests).
    var watchesConfigDirectory: Bool { state.withLock { $0.configWatch != nil } }

    var isAlive: Bool {
        // Checked under the lock: `close()` must not free the connection while libvirt reads it.
        state.withLock { s in !s.closed && virConnectIsAlive(conn) == 1 }
    }

    func withLease<T>(_ body: () throws -> T) throws -> T {
        try state.withLock { s in
            guard !s.closed else { throw MonitorError.notConnected(uri) }
            // Taken under the lock, so it cannot interleave with the owner's final close.
            virConnectRef(conn)
            s.leases += 1
        }
        defer {
            state.withLock { $0.leases -= 1 }
            virConnectClose(conn)
        }
        return try body()
    }

    /// Leases still held (tests).
    var leasesHeld: Int { state.withLock { $0.leases } }

    func close() {
        let taken = state.withLock { s -> State in
            let copy = s
            // Leases in flight stay counted: each returns its own reference when it ends.
            s = State(closed: true, leases: s.leases)
            return copy
        }
        guard !taken.closed else { return }
        // On a dead connection deregistering fails; libvirt then frees the callbacks when it disposes of
        // the connection. The free callbacks release the sinks either way.
        for id in taken.nodeDeviceCallbacks { _ = virConnectNodeDeviceEventDeregisterAny(conn, id) }
        for id in taken.domainCallbacks { _ = virConnectDomainEventDeregisterAny(conn, id) }
        taken.configWatch?.stop()
        if taken.closeRegistered { _ = virConnectUnregisterCloseCallback(conn, closeCallback) }
        virConnectClose(conn)
        events.finish()
    }

    // MARK: queries

    /// The host's name and boot. A local libvirtd shares this kernel, whose boot id says it all; a remote
    /// one's boot is estimated from its CPU time (`HostBoot`). A host that does not say is not guessed at.
    private static func watchedHost(_ conn: virConnectPtr, uri: String) -> WatchedHost {
        var hostname: String?
        if let raw = virConnectGetHostname(conn) {
            hostname = String(cString: raw)
            free(raw)
        } else {
            virResetLastError()
        }
        guard !LibvirtURI.isLocal(uri) else { return WatchedHost(hostname: hostname, boot: BootID.current().map { .kernel(id: $0) }) }
        return WatchedHost(hostname: hostname, boot: estimatedBoot(conn))
    }

    /// The boot time estimated from the host's CPU time, whatever the URI (tests compare it with the kernel's).
    var estimatedBoot: HostBoot? { try? withLease { Self.estimatedBoot(conn) } }

    private static func estimatedBoot(_ conn: virConnectPtr) -> HostBoot? {
        cpuTimeAndCount(conn).flatMap { HostBoot.estimate(cpuTimeNanoseconds: $0, cpus: $1) }
    }

    /// The host's cumulative CPU time over all CPUs (kernel, user, idle and I/O wait, in ns) and its CPU
    /// count; nil when libvirt does not tell (the error is dropped: nothing depends on it but the estimate).
    private static func cpuTimeAndCount(_ conn: virConnectPtr) -> (UInt64, Int)? {
        defer { virResetLastError() }
        var info = virNodeInfo()
        guard virNodeGetInfo(conn, &info) == 0 else { return nil }
        let all = Int32(VIR_NODE_CPU_STATS_ALL_CPUS.rawValue)
        var count: Int32 = 0
        guard virNodeGetCPUStats(conn, all, nil, &count, 0) == 0, count > 0 else { return nil }
        var stats = [virNodeCPUStats](repeating: virNodeCPUStats(), count: Int(count))
        guard virNodeGetCPUStats(conn, all, &stats, &count, 0) == 0 else { return nil }
        let fields: Set<String> = ["kernel", "user", "idle", "iowait"]
        let total = stats.prefix(Int(count)).reduce(UInt64(0)) { sum, stat in
            var stat = stat
            let field = withUnsafeBytes(of: &stat.field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return fields.contains(field) ? sum &+ UInt64(stat.value) : sum
        }
        return (total, Int(info.cpus))
    }

    func listNodeDevices(_ which: NodeDeviceListing) throws -> [String] {
        var names: [String] = []
        try forEachListed(which, active: nil, persistent: nil) { _, name in names.append(name) }
        return names
    }

    /// `VIR_CONNECT_LIST_NODE_DEVICES_PERSISTENT` and `_TRANSIENT` (libvirt 10.1; this build's headers are 9.0's).
    private static let listPersistent: UInt32 = 1 << 28
    private static let listTransient: UInt32 = 1 << 29
    /// `VIR_NODE_DEVICE_XML_INACTIVE` (libvirt 10.1).
    private static let xmlInactive: UInt32 = 1 << 0

    /// One `virConnectListAllNodeDevices` call: hands each listed device and its name to `body`, and frees
    /// every device and the array whatever `body` throws (the first error ends the calls to `body`).
    private func forEachListed(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                               _ body: (virNodeDevicePtr, String) throws -> Void) throws {
        precondition(persistent == nil || version.readsDefinitions, "libvirt \(version) has no persistence filter")
        let cap = switch which {
        case .mdevs: VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV.rawValue
        case .mdevParents: VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES.rawValue
        }
        let state = switch active {
        case true?: VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE.rawValue
        case false?: VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE.rawValue
        case nil: VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE.rawValue | VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE.rawValue
        }
        let persistence = switch persistent {
        case true?: Self.listPersistent
        case false?: Self.listTransient
        case nil: UInt32(0)
        }
        var list: UnsafeMutablePointer<virNodeDevicePtr?>?
        let count = virConnectListAllNodeDevices(conn, &list, UInt32(cap | state) | persistence)
        guard count >= 0, let list else { throw Self.lastError(operation: "list node devices on", object: uri) }
        defer { free(list) }
        var failure: (any Error)?
        for i in 0..<Int(count) {
            guard let dev = list[i] else { continue }
            defer { virNodeDeviceFree(dev) }
            guard failure == nil, let name = virNodeDeviceGetName(dev) else { continue }
            do { try body(dev, String(cString: name)) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    var isLocal: Bool { LibvirtURI.isLocal(uri) }

    func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                            fetched: (_ name: String, _ error: LibvirtError?) -> Void) throws -> [(name: String, xml: String)] {
        var out: [(name: String, xml: String)] = []
        try forEachListed(which, active: active, persistent: persistent) { dev, name in
            guard let raw = virNodeDeviceGetXMLDesc(dev, 0) else {
                let error = Self.lastError(operation: "get XML of node device", object: name)
                // Vanished since the listing: not an error of the sync. A lost connection fails the listing;
                // anything else is this device's own failure.
                if error.isNoSuchObject { return fetched(name, nil) }
                guard isAlive else { throw error }
                fetched(name, error)
                return
            }
            fetched(name, nil)
            out.append((name, String(cString: raw)))
            free(raw)
        }
        return out
    }

    func nodeDevice(named name: String) throws -> NodeDeviceRecord? {
        guard let dev = virNodeDeviceLookupByName(conn, name) else {
            let error = Self.lastError(operation: "look up node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        defer { virNodeDeviceFree(dev) }
        // Each error is read right after its call: the next libvirt call would reset it.
        let active = virNodeDeviceIsActive(dev)
        if active < 0 {
            let error = Self.lastError(operation: "get active state of node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let persistent = virNodeDeviceIsPersistent(dev)
        if persistent < 0 {
            let error = Self.lastError(operation: "get persistence of node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        // What an mdev's next start applies, read before its live state: a restart or update in between
        // then pairs an old definition with the new live state (in sync until the event that follows
        // refetches), never a new definition with the old live state (a false drift). libvirt names every
        // mdev `mdev_…`; its placeholder parent `computer` is active and persistent too, but no mdev. A
        // device undefined or stopped meanwhile has no separate definition ("not persistent"): not known
        // for this moment, and its own event refetches it.
        var definedXML: String?
        if active == 1 && persistent == 1 && version.readsDefinitions && name.hasPrefix("mdev_"),
           let raw = virNodeDeviceGetXMLDesc(dev, Self.xmlInactive) {
            definedXML = String(cString: raw)
            free(raw)
        }
        guard let raw = virNodeDeviceGetXMLDesc(dev, 0) else {
            let error = Self.lastError(operation: "get XML of node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let xml = String(cString: raw)
        free(raw)
        var autostart: Int32 = 0
        if virNodeDeviceGetAutostart(dev, &autostart) < 0 {
            let error = Self.lastError(operation: "get autostart of node device", object: name)
            if error.isNoSuchObject { return nil }
            guard error.code == LibvirtError.Code.operationDenied else { throw error }
            autostart = MdevctlDefinitions.read(deviceXML: xml) ? 1 : 0
        }
        return NodeDeviceRecord(
            name: name, xml: xml,
            flags: DeviceFlags(active: active == 1, persistent: persistent == 1, autostart: autostart != 0),
            definedXML: definedXML)
    }

    func listDomains() throws -> [String] {
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let count = virConnectListAllDomains(conn, &list, 0)
        guard count >= 0, let list else { throw Self.lastError(operation: "list domains on", object: uri) }
        defer { free(list) }
        var names: [String] = []
        for i in 0..<Int(count) {
            guard let dom = list[i] else { continue }
            if let name = virDomainGetName(dom) { names.append(String(cString: name)) }
            virDomainFree(dom)
        }
        return names
    }

    func domain(named name: String) throws -> DomainRecord? {
        guard let dom = virDomainLookupByName(conn, name) else {
            let error = Self.lastError(operation: "look up domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        defer { virDomainFree(dom) }
        guard let raw = virDomainGetXMLDesc(dom, UInt32(VIR_DOMAIN_XML_INACTIVE.rawValue)) else {
            let error = Self.lastError(operation: "get XML of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let xml = String(cString: raw)
        free(raw)
        // Each error is read right after its call: the next libvirt call would reset it.
        let active = virDomainIsActive(dom)
        if active < 0 {
            let error = Self.lastError(operation: "get active state of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let persistent = virDomainIsPersistent(dom)
        if persistent < 0 {
            let error = Self.lastError(operation: "get persistence of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        var autostart: Int32 = 0
        if virDomainGetAutostart(dom, &autostart) < 0 {
            let error = Self.lastError(operation: "get autostart of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        // A running domain's live XML holds what it uses now, hot-plugged devices included. A domain that
        // stopped meanwhile answers with its configuration; its STOPPED event refetches it.
        var liveXML: String?
        if active == 1 {
            guard let raw = virDomainGetXMLDesc(dom, 0) else {
                let error = Self.lastError(operation: "get live XML of domain", object: name)
                if error.isNoSuchObject { return nil }
                throw error
            }
            liveXML = String(cString: raw)
            free(raw)
        }
        return DomainRecord(
            name: name, inactiveXML: xml, liveXML: liveXML, active: active == 1, persistent: persistent == 1,
            autostart: autostart != 0)
    }

    // MARK: actions

    func startNodeDevice(named name: String) throws {
        guard let dev = virNodeDeviceLookupByName(conn, name) else {
            throw Self.lastError(operation: "look up node device", object: name)
        }
        defer { virNodeDeviceFree(dev) }
        if virNodeDeviceCreate(dev, 0) < 0 {
            throw Self.lastError(operation: "start node device", object: name)
        }
    }

    func createNodeDevice(xml: String) throws -> String {
        guard let dev = virNodeDeviceCreateXML(conn, xml, 0) else {
            throw Self.lastError(operation: "create node device on", object: uri)
        }
        defer { virNodeDeviceFree(dev) }
        return virNodeDeviceGetName(dev).map { String(cString: $0) } ?? ""
    }

    // MARK: errors

    /// Reads libvirt's thread-local last error; must run right after the failing call on the same thread
    /// (every libvirt API call resets it on entry).
    static func lastError(operation: String, object: String) -> LibvirtError {
        guard let err = virGetLastError() else {
            // libvirt failed without setting an error: say so rather than invent one.
            return LibvirtError(code: 0, domain: 0, message: "libvirt reported failure but set no error",
                                operation: operation, object: object)
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "no message"
        let result = LibvirtError(
            code: Int(err.pointee.code), domain: Int(err.pointee.domain), message: message,
            operation: operation, object: object)
        virResetLastError()
        return result
    }

    static func closeReason(_ reason: Int32) -> String {
        switch UInt32(reason) {
        case VIR_CONNECT_CLOSE_REASON_ERROR.rawValue: "connection error"
        case VIR_CONNECT_CLOSE_REASON_EOF.rawValue: "libvirtd closed the connection (EOF)"
        case VIR_CONNECT_CLOSE_REASON_KEEPALIVE.rawValue: "keepalive timed out"
        case VIR_CONNECT_CLOSE_REASON_CLIENT.rawValue: "closed by client"
        default: "closed (reason \(reason))"
        }
    }

    static func domainEventKind(_ event: Int32) -> DomainEventKind {
        switch UInt32(event) {
        case VIR_DOMAIN_EVENT_DEFINED.rawValue: .defined
        case VIR_DOMAIN_EVENT_UNDEFINED.rawValue: .undefined
        case VIR_DOMAIN_EVENT_STARTED.rawValue: .started
        case VIR_DOMAIN_EVENT_SUSPENDED.rawValue: .suspended
        case VIR_DOMAIN_EVENT_RESUMED.rawValue: .resumed
        case VIR_DOMAIN_EVENT_STOPPED.rawValue: .stopped
        case VIR_DOMAIN_EVENT_SHUTDOWN.rawValue: .shutdown
        case VIR_DOMAIN_EVENT_PMSUSPENDED.rawValue: .pmsuspended
        case VIR_DOMAIN_EVENT_CRASHED.rawValue: .crashed
        default: .unknown
        }
    }
}
