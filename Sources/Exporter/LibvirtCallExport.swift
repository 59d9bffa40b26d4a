public import Monitor

/// `mdev_libvirt_call_in_flight_seconds`: how long the oldest libvirt call the daemon is waiting for has
/// waited, read from the live `LibvirtCalls` at each scrape (the index does not change while a call hangs).
public struct LibvirtCallExport: MetricsContributor {
    private let calls: LibvirtCalls

    public init(calls: LibvirtCalls) { self.calls = calls }

    public func contribute(to w: inout MetricsWriter, snapshot: IndexSnapshot) {
        w.family("mdev_libvirt_call_in_flight_seconds", type: .gauge,
                 help: "How long the oldest libvirt call mdevmon is waiting for has waited; 0 when none is in flight. Past --libvirt.stuck-after, /healthz fails and the journal says which call.")
        w.sample("mdev_libvirt_call_in_flight_seconds", value: calls.oldestSeconds)
    }
}
