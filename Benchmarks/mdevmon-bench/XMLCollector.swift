import Exporter
import Foundation
import Monitor

/// The cheapest design a polling exporter can have: list the active and the inactive mdevs (two RPCs,
/// which give each device's active state), fetch each one's XML (one RPC per device, as `floor.c xml`
/// does), parse, render. Persistence and autostart are not fetched; inactive devices count as persistent,
/// as libvirt only lists defined ones as inactive. Reads through a one-shot connection (no callbacks),
/// whose `listNodeDeviceXMLs` makes exactly these calls.
final class XMLCollector: Sendable {
    private let connection: any LibvirtConnection
    let uri: String

    init(uri: String) throws {
        do {
            connection = try LibvirtConnectorImpl.connectOnce(uri: uri, readOnly: true)
        } catch {
            throw BenchError("XMLCollector: cannot connect to \(uri): \(error)")
        }
        self.uri = uri
    }

    deinit { connection.close() }

    /// One scrape. - Returns: The body size and how many devices it covered.
    func scrape(build: BuildInfo) throws -> (bytes: Int, devices: Int) {
        var devices: [MdevDevice] = []
        for active in [true, false] {
            // A device that went away between the list and the fetch is skipped, as a collector would.
            for (name, xml) in try connection.listNodeDeviceXMLs(.mdevs, active: active, persistent: nil) {
                if case .mdev(let definition) = try NodeDeviceXML.parse(xml, fallbackName: name) {
                    devices.append(MdevDevice(
                        definition: definition, flags: DeviceFlags(active: active, persistent: !active, autostart: false)))
                }
            }
        }
        var status = MonitorStatus(uri: uri)
        status.connected = true
        status.synced = true
        let snapshot = IndexSnapshot(state: IndexState(devices: devices, parents: [], domains: []), status: status)
        let body = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil)
        return (body.count, devices.count)
    }
}
