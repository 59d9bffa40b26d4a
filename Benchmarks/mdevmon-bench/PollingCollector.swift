import Exporter
import Monitor

/// What today's libvirt exporters do on every scrape, on mdevmon's own binding: list the mdevs,
/// fetch each one's XML and flags (4 RPCs per device), parse, render. No index, no events, no
/// cache. `XMLCollector` is the cheapest variant (1 RPC per device).
enum PollingCollector {
    /// One scrape. - Returns: The body size and how many devices it covered.
    static func scrape(_ connection: any LibvirtConnection, build: BuildInfo) throws -> (bytes: Int, devices: Int) {
        var devices: [MdevDevice] = []
        for name in try connection.listNodeDevices(.mdevs) {
            guard let record = try connection.nodeDevice(named: name) else { continue }
            if case .mdev(let definition) = try NodeDeviceXML.parse(record.xml, fallbackName: name) {
                devices.append(MdevDevice(definition: definition, flags: record.flags))
            }
        }
        var status = MonitorStatus(uri: connection.uri)
        status.connected = true
        status.synced = true
        let snapshot = IndexSnapshot(state: IndexState(devices: devices, parents: [], domains: []), status: status)
        let body = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil)
        return (body.count, devices.count)
    }
}
