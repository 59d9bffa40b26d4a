import Foundation
import Synchronization
@testable import Monitor

/// An in-memory libvirtd behind the seam. Tests arrange node devices (name → XML + flags) and domains,
/// drive events into the open connection, break the connection, make `connect` fail, and read back
/// what the Monitor asked for.
final class FakeLibvirt: LibvirtConnector {
    struct Device: Sendable {
        var xml: String
        var flags: DeviceFlags
        /// Which listing returns it; nil for a device that is neither (a plain PCI function).
        var listing: NodeDeviceListing?
        /// Its definition apart from its live XML (`VIR_NODE_DEVICE_XML_INACTIVE`); nil: the same as `xml`.
        var definedXML: String? = nil
    }

    private struct State {
        var devices: [String: Device] = [:]
        var domains: [String: DomainRecord] = [:]
        /// While set, libvirtd is "down": `connect` fails with this message.
        var down: String?
        var connectFailuresLeft = 0
        var connectAttempts: [ContinuousClock.Instant] = []
        var connectsSucceeded = 0
        var open: [FakeConnection] = []
        var nodeDeviceFetches: [String] = []
        var domainFetches: [String] = []
        var vanishOnFetch: Set<String> = []
        var listedWithXML: [String] = []
    }

    static let inactivePersistent = DeviceFlags(active: false, persistent: true, autostart: false)

    let uri = "test:///fake"
    private let state = Mutex(State())
    /// Capacity of each new connection's event queue (small to test the overflow resync).
    let eventQueueCapacity: Int

    init(eventQueueCapacity: Int = 65_536) { self.eventQueueCapacity = eventQueueCapacity }

    // MARK: arranging libvirtd's objects

    /// Stores a node device under the name in its XML, listed as its XML says (mdev or parent).
    /// - Returns: the device's name.
    @discardableResult
    func putDevice(xml: String, flags: DeviceFlags = inactivePersistent) throws -> String {
        let (name, listing): (String, NodeDeviceListing?) = switch try NodeDeviceXML.parse(xml) {
        case .mdev(let d): (d.name, .mdevs)
        case .parent(let p): (p.name, .mdevParents)
        case .other(let name): (name, nil)
        }
        putDevice(named: name, xml: xml, flags: flags, listing: listing)
        return name
    }

    /// Stores a node device exactly as given, for XML the parser rejects.
    func putDevice(named name: String, xml: String, flags: DeviceFlags = inactivePersistent,
                   listing: NodeDeviceListing?) {
        state.withLock { $0.devices[name] = Device(xml: xml, flags: flags, listing: listing) }
    }

    func removeDevice(named name: String) {
        state.withLock { _ = $0.devices.removeValue(forKey: name) }
    }

    /// Gives the device a definition apart from its live XML, as `nodedev-update --config` does (libvirt ≥ 10.1).
    func updateDefinition(of name: String, xml: String?) {
        state.withLock { s in
            guard s.devices[name] != nil else { preconditionFailure("no device \(name) in the fake") }
            s.devices[name]?.definedXML = xml
        }
    }

    /// The libvirt version connections report (9.0.0 unless a test plays a newer one).
    let version = Mutex(LibvirtVersion(major: 9, minor: 0, micro: 0))

    func updateFlags(of name: String, _ update: (inout DeviceFlags) -> Void) {
        state.withLock { s in
            guard var device = s.devices[name] else { preconditionFailure("no device \(name) in the fake") }
            update(&device.flags)
            s.devices[name] = device
        }
    }

    func putDomain(_ record: DomainRecord) {
        state.withLock { $0.domains[record.name] = record }
    }

    func removeDomain(named name: String) {
        state.withLock { _ = $0.domains.removeValue(forKey: name) }
    }

    /// The next fetch of `name` finds it gone: it vanished between its event and the Monitor's fetch.
    func vanishOnNextFetch(_ name: String) {
        state.withLock { _ = $0.vanishOnFetch.insert(name) }
    }

    // MARK: driving the connection

    /// Yields `event` into the newest open connection, as a libvirt callback would.
    /// - Returns: false when no connection is open.
    @discardableResult
    func emit(_ event: LibvirtEvent) -> Bool {
        guard let connection = state.withLock({ $0.open.last }) else { return false }
        return connection.deliver(event)
    }

    /// libvirtd closes the connection (it died, keepalive timed out, …); reconnecting works at once.
    func closeConnection(reason: String) {
        let open = state.withLock { s in
            defer { s.open = [] }
            return s.open
        }
        for connection in open { connection.remoteClose(reason: reason) }
    }

    /// libvirtd goes away: the open connection closes and `connect` fails until `comeUp()`.
    func goDown(reason: String) {
        state.withLock { $0.down = reason }
        closeConnection(reason: reason)
    }

    /// libvirtd dies but the client has not noticed yet: calls fail and `isAlive` is false, while the
    /// connection stays open (events queued before the death still arrive) until `closeConnection`.
    func dieUnnoticed(reason: String) {
        state.withLock { $0.down = reason }
    }

    func comeUp() {
        state.withLock { $0.down = nil }
    }

    /// The next `count` connects fail.
    func failConnects(_ count: Int) {
        state.withLock { $0.connectFailuresLeft = count }
    }

    // MARK: observing the Monitor

    var connectAttempts: [ContinuousClock.Instant] { state.withLock { $0.connectAttempts } }
    var connectsSucceeded: Int { state.withLock { $0.connectsSucceeded } }
    var openConnections: Int { state.withLock { $0.open.count } }
    /// The newest open connection's event queue (to watch its bound).
    var newestEventQueue: EventQueue? { state.withLock { $0.open.last?.events } }
    /// Names passed to `nodeDevice(named:)`, in call order, since the last `resetFetchLog()`.
    var nodeDeviceFetches: [String] { state.withLock { $0.nodeDeviceFetches } }
    var domainFetches: [String] { state.withLock { $0.domainFetches } }
    /// Names whose XML came with a listing (the full sync's one RPC per device).
    var listedWithXML: [String] { state.withLock { $0.listedWithXML } }

    func resetFetchLog() {
        state.withLock { s in
            s.nodeDeviceFetches = []
            s.domainFetches = []
        }
    }

    /// What a full sync of libvirtd's current objects yields, read through a connection that neither
    /// counts fetches nor receives events.
    func freshSync() throws -> FullSync.Result {
        try FullSync.read(from: FakeConnection(server: self, counted: false))
    }

    /// A full sync through a counted connection, reading mdevctl's files from `mdevctlRoot`.
    func countedSync(mdevctlRoot: String) throws -> FullSync.Result {
        try FullSync.read(from: FakeConnection(server: self, counted: true), mdevctlRoot: mdevctlRoot)
    }

    // MARK: LibvirtConnector

    /// While set, `connect` blocks (a libvirtd that accepts but does not answer).
    let connectsPaused = Atomic(false)
    /// Connects blocked by `connectsPaused` right now.
    let blockedConnects = Atomic(0)

    func connect(uri: String, readOnly: Bool) throws -> any LibvirtConnection {
        if connectsPaused.load(ordering: .sequentiallyConsistent) {
            blockedConnects.add(1, ordering: .sequentiallyConsistent)
            while connectsPaused.load(ordering: .sequentiallyConsistent) { usleep(1000) }
            blockedConnects.subtract(1, ordering: .sequentiallyConsistent)
        }
        let refusal: String? = state.withLock { s in
            s.connectAttempts.append(ContinuousClock.now)
            if let down = s.down { return down }
            if s.connectFailuresLeft > 0 {
                s.connectFailuresLeft -= 1
                return "Failed to connect socket: Connection refused"
            }
            return nil
        }
        if let refusal {
            throw LibvirtError(code: LibvirtError.Code.systemError, domain: 7, message: refusal,
                               operation: "connect to", object: uri)
        }
        let connection = FakeConnection(server: self, counted: true)
        state.withLock { s in
            s.connectsSucceeded += 1
            s.open.append(connection)
        }
        return connection
    }

    // MARK: what connections call

    fileprivate func checkUp(_ operation: String, _ object: String) throws {
        if let down = state.withLock({ $0.down }) {
            throw LibvirtError(code: LibvirtError.Code.rpc, domain: 7, message: down, operation: operation,
                               object: object)
        }
    }

    fileprivate func list(_ which: NodeDeviceListing) -> [String] {
        state.withLock { s in s.devices.filter { $0.value.listing == which }.keys.sorted() }
    }

    fileprivate func listWithXML(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?, counted: Bool) throws -> [(name: String, xml: String)] {
        if persistent != nil && !version.withLock({ $0.readsDefinitions }) {
            // What libvirt 9's virCheckFlags answers.
            throw LibvirtError(code: 3, domain: 50, message: "unsupported flags (0x30004000) in function virNodeDeviceObjListExport",
                               operation: "list node devices on", object: uri)
        }
        return state.withLock { s in
            let names = s.devices.filter {
                $0.value.listing == which && (active == nil || $0.value.flags.active == active)
                    && (persistent == nil || $0.value.flags.persistent == persistent)
            }.keys.sorted()
            return names.compactMap { name in
                if counted { s.listedWithXML.append(name) }
                if s.vanishOnFetch.remove(name) != nil { s.devices[name] = nil }
                return s.devices[name].map { (name, $0.xml) }
            }
        }
    }

    /// Whether connections report libvirtd as local (then the full sync reads `mdevctlRoot`).
    let local = Atomic(false)
    /// What the connections report as `configWatchProblem`.
    let configWatchProblem = Mutex<String?>(nil)
    /// What the connections report as the host they reach.
    let watchedHost = Mutex(WatchedHost(hostname: nil, boot: nil))
    /// While paused, counted device fetches block (on the Monitor's blocking thread), as a slow libvirtd would.
    private let paused = Atomic(false)
    func pauseFetches() { paused.store(true, ordering: .sequentiallyConsistent) }
    func resumeFetches() { paused.store(false, ordering: .sequentiallyConsistent) }
    /// Fetches blocked by `pauseFetches` right now.
    let blockedFetches = Atomic(0)

    fileprivate func fetchDevice(_ name: String, counted: Bool) -> NodeDeviceRecord? {
        if counted && paused.load(ordering: .sequentiallyConsistent) {
            blockedFetches.add(1, ordering: .sequentiallyConsistent)
            while paused.load(ordering: .sequentiallyConsistent) { usleep(1000) }
            blockedFetches.subtract(1, ordering: .sequentiallyConsistent)
        }
        return state.withLock { s in
            if counted { s.nodeDeviceFetches.append(name) }
            if s.vanishOnFetch.remove(name) != nil { s.devices[name] = nil }
            guard let device = s.devices[name] else { return nil }
            // libvirt ≥ 10.1 formats an active persistent mdev's definition apart (the same XML unless updated).
            let separate = device.flags.active && device.flags.persistent && name.hasPrefix("mdev_")
                && version.withLock { $0.readsDefinitions }
            return NodeDeviceRecord(name: name, xml: device.xml, flags: device.flags,
                                    definedXML: separate ? device.definedXML ?? device.xml : nil)
        }
    }

    /// Objects whose every read fails (a sick GPU's sysfs read), with libvirt's error; the connection stays up.
    private let sick = Mutex<Set<String>>([])
    func makeSick(_ name: String) { _ = sick.withLock { $0.insert(name) } }
    func heal(_ name: String) { _ = sick.withLock { $0.remove(name) } }

    fileprivate func sickError(_ name: String) -> LibvirtError? {
        guard sick.withLock({ $0.contains(name) }) else { return nil }
        return LibvirtError(code: 1, domain: 24, message: "internal error: failed to read available_instances: Input/output error",
                            operation: "get XML of node device", object: name)
    }

    fileprivate func listDomains() -> [String] {
        state.withLock { $0.domains.keys.sorted() }
    }

    fileprivate func fetchDomain(_ name: String, counted: Bool) -> DomainRecord? {
        state.withLock { s in
            if counted { s.domainFetches.append(name) }
            return s.domains[name]
        }
    }

    fileprivate func start(_ name: String) throws {
        try state.withLock { s in
            guard var device = s.devices[name] else {
                throw LibvirtError(code: LibvirtError.Code.noNodeDevice, domain: 50, message: "no node device",
                                   operation: "start node device", object: name)
            }
            device.flags.active = true
            s.devices[name] = device
        }
    }

    fileprivate func forget(_ connection: FakeConnection) {
        state.withLock { $0.open.removeAll { $0 === connection } }
    }
}

/// One connection to the fake: its own event stream, closed by the client or by "libvirtd".
final class FakeConnection: LibvirtConnection {
    let uri: String
    let events: EventQueue
    private let server: FakeLibvirt
    /// Whether fetches count in the server's fetch log (false for `freshSync`).
    private let counted: Bool
    private let closed = Mutex(false)

    fileprivate init(server: FakeLibvirt, counted: Bool) {
        uri = server.uri
        self.server = server
        self.counted = counted
        events = EventQueue(capacity: server.eventQueueCapacity)
    }

    fileprivate func deliver(_ event: LibvirtEvent) -> Bool {
        guard !closed.withLock({ $0 }) else { return false }
        events.push(event)
        return true
    }

    /// The server side hangs up, like libvirt's close callback.
    fileprivate func remoteClose(reason: String) {
        events.push(.connectionClosed(reason: reason))
    }

    func withLease<T>(_ body: () throws -> T) throws -> T {
        try closed.withLock { closed in
            if closed {
                throw MonitorError.notConnected(uri)
            }
        }
        return try body()
    }

    private func checkOpen(_ operation: String, _ object: String) throws {
        if closed.withLock({ $0 }) {
            throw LibvirtError(code: LibvirtError.Code.invalidConnection, domain: 7, message: "connection closed",
                               operation: operation, object: object)
        }
        try server.checkUp(operation, object)
    }

    var isAlive: Bool { !closed.withLock { $0 } && (try? server.checkUp("is alive", uri)) != nil }

    func listNodeDevices(_ which: NodeDeviceListing) throws -> [String] {
        try checkOpen("list node devices", uri)
        return server.list(which)
    }

    var isLocal: Bool { server.local.load(ordering: .relaxed) }
    var configWatchProblem: String? { server.configWatchProblem.withLock { $0 } }
    var host: WatchedHost { server.watchedHost.withLock { $0 } }

    var version: LibvirtVersion { server.version.withLock { $0 } }

    func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                            fetched: (_ name: String, _ error: LibvirtError?) -> Void) throws -> [(name: String, xml: String)] {
        try checkOpen("list node devices", uri)
        return try server.listWithXML(which, active: active, persistent: persistent, counted: counted).filter { name, _ in
            let error = server.sickError(name)
            fetched(name, error)
            return error == nil
        }
    }

    func nodeDevice(named name: String) throws -> NodeDeviceRecord? {
        try checkOpen("get node device", name)
        if let error = server.sickError(name) { throw error }
        return server.fetchDevice(name, counted: counted)
    }

    func listDomains() throws -> [String] {
        try checkOpen("list domains", uri)
        return server.listDomains()
    }

    func domain(named name: String) throws -> DomainRecord? {
        try checkOpen("get domain", name)
        if let error = server.sickError(name) { throw error }
        return server.fetchDomain(name, counted: counted)
    }

    func startNodeDevice(named name: String) throws {
        try checkOpen("start node device", name)
        try server.start(name)
    }

    func createNodeDevice(xml: String) throws -> String {
        try checkOpen("create node device", uri)
        guard case .mdev(let definition) = try NodeDeviceXML.parse(xml) else {
            throw LibvirtError(code: 27, domain: 50, message: "not an mdev", operation: "create node device",
                               object: uri)
        }
        server.putDevice(named: definition.name, xml: xml,
                         flags: DeviceFlags(active: true, persistent: false, autostart: false), listing: .mdevs)
        return definition.name
    }

    func close() {
        let wasClosed = closed.withLock { c in
            defer { c = true }
            return c
        }
        guard !wasClosed else { return }
        events.finish()
        server.forget(self)
    }
}
