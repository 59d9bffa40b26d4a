import Foundation
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
}
