import Foundation
import Logging
import Monitor
import TestSupport
import Testing

@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct DomainReferenceTests {
    @Test func definedDomainReferencesMdevUntilUndefined() async throws {
        let uuid = LibvirtHost.newUUID()
        let missing = LibvirtHost.newUUID()
        let domain = "mdevmon-test-\(UUID().uuidString.prefix(8))"
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.cleanup(uuid: uuid)
        }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            _ = try LibvirtHost.define(uuid: uuid)
            #expect(await eventually { monitor.device(uuid: uuid) != nil })

            try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [uuid, missing])
            #expect(await eventually { monitor.device(uuid: uuid)?.domains == [domain] }, "reference not applied")
            let info = try #require(monitor.index.snapshot.state.domains[domain])
            #expect(info.mdevUUIDs == [uuid, missing])
            #expect(info.persistent && !info.active)

            #expect(LibvirtHost.virsh("undefine", domain).status == 0)
            #expect(await eventually { monitor.device(uuid: uuid)?.domains == [] }, "reference not removed")
            #expect(monitor.index.snapshot.state.domains[domain] == nil)
        }
    }

    /// The host has no mdev to hot-plug, but its libvirtd shows the rest: a running domain's live attach
    /// raises DEVICE_ADDED, which mdevmon receives (counted) and answers by reading the domain's live XML
    /// without an error. The mdev side of hotplug runs on a real kernel in the e2e guest (Tests/e2e,
    /// scenario hotplug).
    @Test func liveAttachToARunningDomainIsReceived() async throws {
        let domain = "mdevmon-hotplug-\(UUID().uuidString.prefix(8).lowercased())"
        defer {
            LibvirtHost.virsh("destroy", domain)
            LibvirtHost.virsh("undefine", domain)
        }
        let log = LogCapture()
        try await withMonitor(logger: log.logger) { monitor in
            await monitor.waitForFirstSync()
            try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [])
            #expect(LibvirtHost.virsh("start", domain).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { monitor.index.snapshot.state.domains[domain]?.active == true })
            let key = EventCounterKey(source: "domain", event: "device_added")
            let before = monitor.index.snapshot.status.events[key] ?? 0
            let nic = LibvirtHost.virsh("attach-device", domain, "--live", xml: "<interface type='user'><model type='e1000'/></interface>")
            #expect(nic.status == 0, "attach-device failed: \(nic.err)")
            #expect(await eventually(timeout: .seconds(30)) { (monitor.index.snapshot.status.events[key] ?? 0) > before })
            #expect(log.records(atLeast: .error).isEmpty, "errors: \(log.records(atLeast: .error).map(\.message))")
            #expect(LibvirtHost.virsh("destroy", domain).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { monitor.index.snapshot.state.domains[domain]?.active == false })
        }
    }

    /// libvirt 9.0 sends no event when `attach-device --config` / `detach-device --config` rewrite a
    /// defined domain's configuration; mdevmon sees the rewritten file (`DomainConfigWatch`) and fetches
    /// the domain again, so the reference appears and goes without any other change.
    @Test func configAttachAndDetachChangeTheReferences() async throws {
        let uuid = LibvirtHost.newUUID()
        let domain = "mdevmon-config-attach-\(UUID().uuidString.prefix(8).lowercased())"
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.cleanup(uuid: uuid)
        }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            _ = try LibvirtHost.define(uuid: uuid)
            try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [])
            #expect(await eventually(timeout: .seconds(30)) { monitor.index.snapshot.state.domains[domain] != nil })
            let hostdev = LibvirtHost.hostdevXML(uuid: uuid)
            let attach = LibvirtHost.virsh("attach-device", domain, "--config", xml: hostdev)
            #expect(attach.status == 0, "attach-device --config failed: \(attach.err)")
            #expect(await eventually(timeout: .seconds(30)) { monitor.device(uuid: uuid)?.domains == [domain] })
            let key = EventCounterKey(source: "domain", event: "config_written")
            #expect((monitor.index.snapshot.status.events[key] ?? 0) > 0)
            let detach = LibvirtHost.virsh("detach-device", domain, "--config", xml: hostdev)
            #expect(detach.status == 0, "detach-device --config failed: \(detach.err)")
            #expect(await eventually(timeout: .seconds(30)) { monitor.device(uuid: uuid)?.domains == [] })
        }
    }
}
