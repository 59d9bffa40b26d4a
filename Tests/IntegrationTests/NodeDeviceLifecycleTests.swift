import Foundation
import Monitor
import TestSupport
import Testing

/// The Monitor against the machine's real libvirtd: every lifecycle step shows up in the index.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct NodeDeviceLifecycleTests {
    @Test func defineAutostartStartFailureUndefine() async throws {
        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            #expect(monitor.device(uuid: uuid) == nil)

            let name = try LibvirtHost.define(uuid: uuid, attrs: [("b", "2"), ("a", "1")])
            #expect(await eventually { monitor.device(uuid: uuid) != nil }, "DEFINED not applied")
            let defined = try #require(monitor.device(uuid: uuid))
            #expect(defined.name == name)
            #expect(defined.parent == LibvirtHost.pciParent.name)
            #expect(defined.definition.parentAddress == LibvirtHost.pciParent.address)
            #expect(defined.mdevType == "nvidia-63")
            #expect(defined.definition.attrs == [MdevAttr(name: "b", value: "2"), MdevAttr(name: "a", value: "1")])
            #expect(defined.flags == DeviceFlags(active: false, persistent: true, autostart: false))

            #expect(LibvirtHost.virsh("nodedev-autostart", name).status == 0)
            #expect(await eventually { monitor.device(uuid: uuid)?.autostart == true }, "UPDATE not applied")

            // No mdev parent in this machine's sysfs: libvirt refuses, and the index must not move.
            var before = try #require(monitor.device(uuid: uuid))
            let start = LibvirtHost.virsh("nodedev-start", name)
            #expect(start.status != 0)
            #expect(start.err.contains("Unable to") || start.err.contains("error"))
            // libvirt delivers one connection's events in order: once a later change (autostart off) is
            // applied, anything the failed start emitted has been applied before it.
            #expect(LibvirtHost.virsh("nodedev-autostart", "--disable", name).status == 0)
            #expect(await eventually { monitor.device(uuid: uuid)?.autostart == false }, "UPDATE not applied")
            before.flags.autostart = false
            #expect(monitor.device(uuid: uuid) == before, "the failed start changed the index")

            #expect(LibvirtHost.virsh("nodedev-undefine", name).status == 0)
            #expect(await eventually { monitor.device(uuid: uuid) == nil }, "UNDEFINED not applied")
        }
    }

    @Test func mdevctlDefineOutsideLibvirtAppears() async throws {
        let uuid = LibvirtHost.newUUID()
        defer {
            LibvirtHost.run("/usr/bin/mdevctl", ["undefine", "--uuid", uuid])
            LibvirtHost.cleanup(uuid: uuid)
        }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            let r = LibvirtHost.run("/usr/bin/mdevctl", [
                "define", "--uuid", uuid, "--parent", LibvirtHost.pciParent.address, "--type", "i915-GVTg_V5_4"])
            try #require(r.status == 0, "mdevctl define failed: \(r.err)")
            #expect(await eventually { monitor.device(uuid: uuid) != nil }, "mdevctl-defined device not seen")
            let device = try #require(monitor.device(uuid: uuid))
            #expect(device.mdevType == "i915-GVTg_V5_4")
            #expect(device.persistent && !device.active)
        }
    }

    @Test func eventCountersCountRealEvents() async throws {
        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            let key = EventCounterKey(source: "nodedev", event: "defined")
            let before = monitor.index.snapshot.status.events[key] ?? 0
            _ = try LibvirtHost.define(uuid: uuid)
            #expect(await eventually { (monitor.index.snapshot.status.events[key] ?? 0) > before })
        }
    }
}
