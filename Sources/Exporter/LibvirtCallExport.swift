public import Monitor

/// The libvirt calls the daemon makes, read from the live `LibvirtCalls` at each scrape (the index does not
/// change while a call hangs):
/// - `mdev_libvirt_call_in_flight_seconds`: how long the oldest call in flight has waited;
/// - `mdev_libvirt_call_duration_seconds{call}`: how long the calls that ended took, by kind (libvirt's
///   answer and mdevmon's parsing of it);
/// - `mdev_event_queue_wait_seconds`: how long a queued object waited to be handed to the Monitor.
/// The last two are summaries without quantiles: `rate(_sum) / rate(_count)` is the mean over a window.
/// Between them they hold most of the time from libvirt's event to the index: what they leave out is the
/// index update itself.
public struct LibvirtCallExport: MetricsContributor {
    private let calls: LibvirtCalls

    public init(calls: LibvirtCalls) { self.calls = calls }

    public func contribute(to w: inout MetricsWriter, snapshot: IndexSnapshot) {
        w.family("mdev_libvirt_call_in_flight_seconds", type: .gauge,
                 help: "How long the oldest libvirt call mdevmon is waiting for has waited; 0 when none is in flight. Past --libvirt.stuck-after, /healthz fails and the journal says which call.")
        w.sample("mdev_libvirt_call_in_flight_seconds", value: calls.oldestSeconds)

        let durations = calls.durations
        w.family("mdev_libvirt_call_duration_seconds", type: .summary,
                 help: "How long mdevmon's libvirt calls took, libvirt's answer and its parsing, by call: connect, full_sync, fetch_node_device and fetch_domain (an event's fetch, the parent's re-read included), action (a policy's look-up, start or create), close.")
        for kind in LibvirtCalls.Kind.allCases {
            let total = durations[kind] ?? DurationTotal()
            w.sample("mdev_libvirt_call_duration_seconds_sum", labels: ["call": kind.rawValue], value: total.seconds)
            w.sample("mdev_libvirt_call_duration_seconds_count", labels: ["call": kind.rawValue], value: total.count)
        }

        let waited = calls.queueWait
        w.family("mdev_event_queue_wait_seconds", type: .summary,
                 help: "How long an object waited in mdevmon's event queue, from its first event (or a requested re-read of a parent sharing a pool) until the Monitor took it up: the other objects' fetches ahead of it.")
        w.sample("mdev_event_queue_wait_seconds_sum", value: waited.seconds)
        w.sample("mdev_event_queue_wait_seconds_count", value: waited.count)
    }
}
