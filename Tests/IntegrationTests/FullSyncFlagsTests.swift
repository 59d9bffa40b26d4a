import Foundation
import Monitor
import Testing

/// The full sync takes state from the listing and persistence and autostart from mdevctl's files; on
/// the real libvirtd that must agree with what libvirt answers device by device.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct FullSyncFlagsTests {
    @Test func syncFlagsEqualLibvirtsPerDeviceAnswers() async throws {
        let manual = LibvirtHost.newUUID(), auto = LibvirtHost.newUUID()
        defer { for uuid in [manual, auto] { LibvirtHost.cleanup(uuid: uuid) } }
        for uuid in [manual, auto] { _ = try LibvirtHost.define(uuid: uuid) }
        let r = LibvirtHost.virsh("nodedev-autostart", LibvirtHost.mdevName(uuid: auto))
        try #require(r.status == 0, "virsh nodedev-autostart failed: \(r.err)")

        // Read-write, so libvirt answers autostart itself rather than mdevmon reading mdevctl's file.
        let connection = try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: false)
        defer { connection.close() }
        #expect(connection.isLocal)
        let synced = try FullSync.read(from: connection).state
        var compared = 0
        for device in synced.devices.values {
            guard let record = try connection.nodeDevice(named: device.name) else { continue }
            #expect(device.flags == record.flags, "\(device.name): sync \(device.flags), libvirt \(record.flags)")
            compared += 1
        }
        #expect(compared >= 2)
        #expect(synced.devices.values.first { $0.uuid == auto }?.flags == DeviceFlags(active: false, persistent: true, autostart: true))
        #expect(synced.devices.values.first { $0.uuid == manual }?.flags == DeviceFlags(active: false, persistent: true, autostart: false))
    }

    /// The version decides the calls: this host's libvirtd is the one `virsh version` names, and the sync's
    /// listings are ones it accepts (before 10.1 — Debian 12 has 9.0 — no persistence filter, which libvirt
    /// 9 rejects). An inactive mdev runs nothing, so its definition is all there is: in sync, never unknown.
    @Test func versionDecidesWhatTheSyncAsksAndInactiveDevicesAreInSync() async throws {
        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        _ = try LibvirtHost.define(uuid: uuid)
        let connection = try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: true)
        defer { connection.close() }
        let r = LibvirtHost.virsh("version", "--daemon")
        try #require(r.status == 0, "virsh version failed: \(r.err)")
        // The daemon's version, which virConnectGetLibVersion returns (not the client library's).
        let line = try #require(r.out.split(separator: "\n").first { $0.contains("Running against daemon:") })
        #expect(line.hasSuffix(" \(connection.version)"), "virsh: \(line); mdevmon: \(connection.version)")
        // Whatever the version, the sync's listings are ones this libvirt accepts.
        let device = try #require(try FullSync.read(from: connection).state.devices.values.first { $0.uuid == uuid })
        #expect(device.drift == .inSync)
        #expect(device.definedConfig == nil)
    }
}
