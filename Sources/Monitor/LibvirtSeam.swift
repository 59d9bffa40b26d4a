/// Node-device lifecycle events libvirt reports (`virNodeDeviceEventLifecycleType`).
public enum NodeDeviceEventKind: String, Hashable, Sendable, CaseIterable {
    case created, deleted, defined, undefined, updated
}

/// Domain events libvirt reports, by name: the lifecycle (`virDomainEventType`) and the live device
/// events (`VIR_DOMAIN_EVENT_ID_DEVICE_ADDED`, `_DEVICE_REMOVED`, `_DEVICE_REMOVAL_FAILED`) that a hot(un)plug
/// raises.
public enum DomainEventKind: String, Hashable, Sendable, CaseIterable {
    case defined, undefined, started, suspended, resumed, stopped, shutdown, pmsuspended, crashed, unknown
    case deviceAdded = "device_added"
    case deviceRemoved = "device_removed"
    case deviceRemovalFailed = "device_removal_failed"
    /// Not a libvirt event: the domain's configuration file was rewritten or removed
    /// (`DomainConfigWatch`), which is all a `--config` attach or detach leaves behind in libvirt 9.0.
    case configWritten = "config_written"
}

/// What a libvirt callback copies out of C before returning: plain values only.
public enum LibvirtEvent: Hashable, Sendable {
    case nodeDevice(name: String, kind: NodeDeviceEventKind)
    case domain(name: String, kind: DomainEventKind)
    /// The connection closed (libvirtd died, keepalive timed out, …).
    case connectionClosed(reason: String)
}

/// One node device as fetched: its XML plus the flags libvirt reports beside it.
public struct NodeDeviceRecord: Hashable, Sendable {
    public var name: String
    public var xml: String
    public var flags: DeviceFlags
    /// An active persistent device's definition (`VIR_NODE_DEVICE_XML_INACTIVE`, libvirt ≥ 10.1): what its
    /// next start applies. nil before 10.1, for other devices, or when libvirt did not answer.
    public var definedXML: String?

    public init(name: String, xml: String, flags: DeviceFlags, definedXML: String? = nil) {
        self.name = name
        self.xml = xml
        self.flags = flags
        self.definedXML = definedXML
    }
}

/// The version of the libvirt a connection talks to (`virConnectGetLibVersion`: the daemon's, also over a
/// remote URI), which decides the calls mdevmon may make: one binary serves libvirt 9 and 11.
public struct LibvirtVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// libvirt's encoding: major × 1,000,000 + minor × 1,000 + micro.
    public var encoded: UInt64

    public init(encoded: UInt64) { self.encoded = encoded }
    public init(major: UInt64, minor: UInt64, micro: UInt64) { encoded = major * 1_000_000 + minor * 1_000 + micro }

    /// libvirt 10.1 added `VIR_NODE_DEVICE_XML_INACTIVE` (a device's definition beside its live state,
    /// which older versions merge into one XML) and the `PERSISTENT`/`TRANSIENT` listing filters.
    public static let definitions = LibvirtVersion(major: 10, minor: 1, micro: 0)

    /// Whether libvirt tells an mdev's definition from its live state, and lists persistent devices apart.
    public var readsDefinitions: Bool { self >= .definitions }

    /// What a connection reports when libvirt does not tell its version (never seen): the oldest, so no
    /// newer calls are made.
    public static let unknown = LibvirtVersion(encoded: 0)

    public static func < (a: LibvirtVersion, b: LibvirtVersion) -> Bool { a.encoded < b.encoded }

    public var description: String { "\(encoded / 1_000_000).\(encoded / 1_000 % 1_000).\(encoded % 1_000)" }
}

/// One domain as fetched: its inactive (configuration) XML, its live XML while it runs, and state flags.
public struct DomainRecord: Hashable, Sendable {
    public var name: String
    public var inactiveXML: String
    /// The running domain's live definition (hot-plugged devices included); nil while it is shut off.
    public var liveXML: String?
    public var active: Bool
    public var persistent: Bool
    public var autostart: Bool

    public init(name: String, inactiveXML: String, liveXML: String? = nil, active: Bool, persistent: Bool,
                autostart: Bool) {
        self.name = name
        self.inactiveXML = inactiveXML
        self.liveXML = liveXML
        self.active = active
        self.persistent = persistent
        self.autostart = autostart
    }
}

/// Which node devices a listing returns.
public enum NodeDeviceListing: Sendable {
    /// Every mdev, active or not.
    case mdevs
    /// Every device offering `mdev_types` (PCI GPUs, `ap_matrix`, CSS, `mtty`, …).
    case mdevParents
}

/// The seam between mdevmon and libvirt: exactly what Monitor and Policy need. `LibvirtClient`
/// wraps the real library; tests substitute a fake.
///
/// Calls block the calling thread for one RPC; every error is a `LibvirtError`.
public protocol LibvirtConnection: AnyObject, Sendable {
    var uri: String { get }
    /// Events since the connection was opened (callbacks are registered by `connect`, before any
    /// listing, so nothing between registration and the first sync is missed), coalesced per object.
    /// Hands out `.closed` once the connection is lost; finishes after `close()`.
    var events: EventQueue { get }
    /// False once the connection is closed or libvirtd is gone (`virConnectIsAlive`); a failed call on
    /// a dead connection is the connection's loss, reported by the close event, not an error of its own.
    var isAlive: Bool { get }
    /// The connected libvirt's version, read once at connect.
    var version: LibvirtVersion { get }
    /// The host libvirtd runs on, read once at connect: its name and which boot it is in.
    var host: WatchedHost { get }
    func listNodeDevices(_ which: NodeDeviceListing) throws -> [String]
    /// One listing RPC, then one XML RPC per listed device (no lookups, no flag calls): the full sync's
    /// cost floor. `active` filters mdevs by state and `persistent` by persistence (nil: both); the names
    /// come with their XML. A device that vanishes between the listing and its XML is left out; one whose
    /// XML libvirt fails to give for any other reason (a sick device's sysfs read) is left out too, so one
    /// object never fails the listing. `fetched` is called after each device's XML RPC, with libvirt's
    /// error when it failed.
    /// - Precondition: `persistent` is nil unless `version.readsDefinitions` (older libvirt rejects the filter).
    /// - Throws: when the listing itself fails, or the connection is lost.
    func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                            fetched: (_ name: String, _ error: LibvirtError?) -> Void) throws -> [(name: String, xml: String)]
    /// Whether this connection's libvirtd runs on this host, so mdevctl's definitions in
    /// `/etc/mdevctl.d` are the ones it reads (a remote URI names a host or a transport).
    var isLocal: Bool { get }
    /// Why this connection could not watch what libvirt changes without an event (`DomainConfigWatch`),
    /// or nil when it watches or has nothing to watch.
    var configWatchProblem: String? { get }
    /// nil when the device does not exist (any more). On libvirt ≥ 10.1 an active persistent device comes
    /// with its definition too (one more RPC).
    func nodeDevice(named name: String) throws -> NodeDeviceRecord?
    func listDomains() throws -> [String]
    /// nil when the domain does not exist (any more).
    func domain(named name: String) throws -> DomainRecord?
    /// `virNodeDeviceCreate`: activates a defined (persistent) device.
    func startNodeDevice(named name: String) throws
    /// `virNodeDeviceCreateXML`: creates a transient device; returns its name.
    func createNodeDevice(xml: String) throws -> String
    /// Runs `body` (calls on this connection, from a thread other than the owner's) while holding a
    /// counted reference, so the owner's `close()` cannot free the connection under it.
    /// - Throws: `MonitorError.notConnected` once the owner has closed it, or what `body` throws.
    func withLease<T>(_ body: () throws -> T) throws -> T
    /// Deregisters callbacks and releases the owner's reference; idempotent. The connection is gone
    /// once the last lease ends.
    func close()
}

extension LibvirtConnection {
    /// `listNodeDeviceXMLs` for a caller that takes any device's failure as the listing's.
    public func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?) throws -> [(name: String, xml: String)] {
        var first: LibvirtError?
        let listed = try listNodeDeviceXMLs(which, active: active, persistent: persistent) { _, error in
            if first == nil { first = error }
        }
        if let first { throw first }
        return listed
    }

    /// Fakes watch nothing.
    public var configWatchProblem: String? { nil }
    /// Fakes name no host unless they say otherwise.
    public var host: WatchedHost { WatchedHost(hostname: nil, boot: nil) }
}

/// Opens connections; the Monitor reconnects through it.
public protocol LibvirtConnector: Sendable {
    func connect(uri: String, readOnly: Bool) throws -> any LibvirtConnection
}

/// A node device or domain by name: what a failed read is about.
public struct LibvirtObject: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Comparable {
        case nodeDevice = "node_device"
        case domain

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public var kind: Kind
    public var name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public static func < (a: Self, b: Self) -> Bool { (a.kind, a.name) < (b.kind, b.name) }

    /// "node device X" or "domain X", as the journal names it.
    public var description: String { "\(kind == .nodeDevice ? "node device" : "domain") \(name)" }

    /// The journal field that names it.
    public var logKey: String { kind == .domain ? LogKey.domainName : LogKey.mdevName }
}
