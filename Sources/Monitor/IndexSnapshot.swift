public import Foundation

/// Which libvirt event a counter counts, for `mdev_events_total{source,event}`.
public struct EventCounterKey: Hashable, Sendable, Comparable {
    public var source: String
    public var event: String

    public init(source: String, event: String) {
        self.source = source
        self.event = event
    }

    public static func < (a: Self, b: Self) -> Bool { (a.source, a.event) < (b.source, b.event) }
}

/// The Monitor's view of its libvirt connection, published with every snapshot.
public struct MonitorStatus: Hashable, Sendable {
    public var uri: String
    /// Connected with callbacks registered.
    public var connected: Bool = false
    /// A full sync finished since the last (re)connect; false means the index may be stale.
    public var synced: Bool = false
    public var lastSyncTime: Date?
    public var reconnects: Int = 0
    public var lastError: String?
    public var events: [EventCounterKey: Int] = [:]
    /// The host of the last connection (kept while disconnected); nil before the first.
    public var host: WatchedHost?
    /// What a libvirt call that has not returned within `LibvirtCallWatch`'s bound does; nil otherwise.
    public var stuckCall: String?
    /// Objects libvirt lists but fails to give (a sick device), with its message; each keeps its last known
    /// state in the index until it reads again.
    public var fetchFailures: [LibvirtObject: String] = [:]

    public init(uri: String) { self.uri = uri }
}

/// An immutable view of the whole index. Readers (a scrape, `list`, the landing page) take one
/// without waiting for event processing.
public struct IndexSnapshot: Sendable {
    public var state: IndexState
    public var status: MonitorStatus
    /// Counts the index's mutations: snapshots of one index with equal generations hold equal states.
    public var generation: Int
    /// What the recent mutations touched (nil for a snapshot built by hand, not by a `DeviceIndex`).
    public var history: ChangeHistory?

    public init(state: IndexState, status: MonitorStatus, generation: Int = 0, history: ChangeHistory? = nil) {
        self.state = state
        self.status = status
        self.generation = generation
        self.history = history
    }

    /// One line for systemd's STATUS=: counts and the connection, O(1).
    public var statusLine: String {
        "\(state.devices.count) mdevs, \(state.activeCount) active; libvirt \(status.synced ? "connected" : "disconnected")"
    }

    /// Devices sorted by (uuid, parent), the order every listing uses.
    public var sortedDevices: [MdevDevice] { state.devices.values.sorted { $0.key < $1.key } }
    public var sortedParents: [ParentDevice] { state.parents.values.sorted { $0.name < $1.name } }
    public var sortedDomains: [DomainInfo] { state.domains.values.sorted { $0.name < $1.name } }
}
