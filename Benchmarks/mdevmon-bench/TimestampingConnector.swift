import Glibc
import Monitor
import Synchronization

/// When things happened to each node device, keyed by `"<what>:<device name>"` (CLOCK_MONOTONIC ns):
/// `defined:…`/`undefined:…` when the event left libvirt's callback, `added:…`/`removed:…` when an
/// `IndexChange` subscriber saw it.
final class Timeline: Sendable {
    private let times = Mutex<[String: UInt64]>([:])

    /// Keeps the first time only: a later duplicate event must not move the mark.
    func mark(_ key: String, at time: UInt64 = Mono.now()) {
        times.withLock { if $0[key] == nil { $0[key] = time } }
    }

    func time(_ key: String) -> UInt64? { times.withLock { $0[key] } }

    /// Overwrites: for marks that should hold the latest occurrence.
    func set(_ key: String, at time: UInt64 = Mono.now()) { times.withLock { $0[key] = time } }

    func forget(_ keys: [String]) { times.withLock { for key in keys { $0[key] = nil } } }

    /// Spins (with 20 µs naps) until `key` is marked or `timeout` seconds pass.
    func wait(_ key: String, timeout: Double) -> UInt64? {
        let deadline = Mono.now() + UInt64(timeout * 1e9)
        while Mono.now() < deadline {
            if let t = time(key) { return t }
            usleep(20)
        }
        return nil
    }
}

/// A `LibvirtConnector` that opens real connections and stamps every node-device event as it comes
/// out of libvirt's callback, before passing it on unchanged. The stamp is taken where the wrapper
/// receives the event from the client's stream: one task hop after the C callback, and the Monitor
/// sees the event one hop later than without the wrapper, so pipeline times here are slight overestimates.
struct TimestampingConnector: LibvirtConnector {
    let timeline: Timeline

    func connect(uri: String, readOnly: Bool) throws -> any LibvirtConnection {
        // The queue's observer stamps each event in libvirt's callback, before any coalescing.
        let timeline = timeline
        let connector = LibvirtConnectorImpl(observe: { event in
            if case .nodeDevice(let name, let kind) = event { timeline.mark("\(kind.rawValue):\(name)") }
        })
        return TimestampingConnection(try connector.connect(uri: uri, readOnly: readOnly), timeline: timeline)
    }
}

final class TimestampingConnection: LibvirtConnection, Sendable {
    private let inner: any LibvirtConnection
    private let timeline: Timeline
    var events: EventQueue { inner.events }

    init(_ inner: any LibvirtConnection, timeline: Timeline) {
        self.inner = inner
        self.timeline = timeline
    }

    func withLease<T>(_ body: () throws -> T) throws -> T { try inner.withLease(body) }

    var uri: String { inner.uri }
    var isAlive: Bool { inner.isAlive }
    func listNodeDevices(_ which: NodeDeviceListing) throws -> [String] { try inner.listNodeDevices(which) }
    /// Also stamps the latest fetch of each device (`fetch:` start, `fetched:` end), so the event
    /// benchmark can tell libvirt's RPC time from mdevmon's own.
    func nodeDevice(named name: String) throws -> NodeDeviceRecord? {
        // Only the event benchmark's devices and the PCI parents: a full sync of 10,000 stays unstamped.
        guard Fixture.isEventDevice(name: name) || name.hasPrefix("pci_") else { return try inner.nodeDevice(named: name) }
        timeline.set("fetch:\(name)")
        defer { timeline.set("fetched:\(name)") }
        return try inner.nodeDevice(named: name)
    }
    func listDomains() throws -> [String] { try inner.listDomains() }
    var isLocal: Bool { inner.isLocal }
    var version: LibvirtVersion { inner.version }
    func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                            fetched: (_ name: String, _ error: LibvirtError?) -> Void) throws -> [(name: String, xml: String)] {
        try inner.listNodeDeviceXMLs(which, active: active, persistent: persistent, fetched: fetched)
    }
    func domain(named name: String) throws -> DomainRecord? { try inner.domain(named: name) }
    func startNodeDevice(named name: String) throws { try inner.startNodeDevice(named: name) }
    func createNodeDevice(xml: String) throws -> String { try inner.createNodeDevice(xml: xml) }
    func close() { inner.close() }
}
