internal import CLibvirt
import Exporter
import Foundation
import Monitor

/// The cheapest design a polling exporter can have, on libvirt's C API directly: list the active
/// and the inactive mdevs (two RPCs, which give each device's active state), fetch each one's XML
/// (one RPC per device, as `floor.c xml` does), parse, render. Persistence and autostart are not
/// fetched; inactive devices count as persistent, as libvirt only lists defined ones as inactive.
final class XMLCollector: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the bench's measuring loop).
    private let connection: virConnectPtr
    let uri: String

    init(uri: String) throws {
        guard let connection = virConnectOpenReadOnly(uri) else {
            throw BenchError("XMLCollector: cannot connect to \(uri): \(Self.lastError())")
        }
        self.connection = connection
        self.uri = uri
    }

    deinit { virConnectClose(connection) }

    /// One scrape. - Returns: The body size and how many devices it covered.
    func scrape(build: BuildInfo) throws -> (bytes: Int, devices: Int) {
        var devices: [MdevDevice] = []
        for active in [true, false] {
            let state = active ? VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE : VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE
            var list: UnsafeMutablePointer<virNodeDevicePtr?>?
            let n = virConnectListAllNodeDevices(
                connection, &list, UInt32(VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV.rawValue | state.rawValue))
            guard n >= 0, let list else { throw BenchError("XMLCollector: list: \(Self.lastError())") }
            defer { free(list) }
            for i in 0..<Int(n) {
                guard let device = list[i] else { continue }
                defer { virNodeDeviceFree(device) }
                // A device that went away between the list and the fetch is skipped, as a collector would.
                guard let xml = virNodeDeviceGetXMLDesc(device, 0) else { continue }
                defer { free(xml) }
                let name = String(cString: virNodeDeviceGetName(device))
                if case .mdev(let definition) = try NodeDeviceXML.parse(String(cString: xml), fallbackName: name) {
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

    private static func lastError() -> String {
        virGetLastError().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown libvirt error"
    }
}
