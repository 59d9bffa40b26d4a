import Foundation
@testable import Monitor
import TestSupport
import Testing

/// What a real libvirtd says about its host: the name `virsh hostname` prints, and a boot whose time the
/// CPU-time estimate (what a remote URI relies on) finds within its tolerance of the kernel's own.
@Suite(.serialized) struct WatchedHostIntegrationTests {
    @Test func aConnectionNamesItsHostAndBoot() throws {
        let client = try LibvirtClient(uri: LibvirtHost.uri, readOnly: true, watch: false)
        defer { client.close() }
        let virsh = LibvirtHost.virsh("hostname")
        try #require(virsh.status == 0, "virsh hostname: \(virsh.err)")
        #expect(client.host.hostname == virsh.out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(client.host.boot == BootID.current().map { .kernel(id: $0) }, "a local URI reports the kernel's boot id")
    }

    @Test func theCPUTimeEstimateFindsTheKernelsBoot() throws {
        let client = try LibvirtClient(uri: LibvirtHost.uri, readOnly: true, watch: false)
        defer { client.close() }
        guard case .estimated(let estimate)? = client.estimatedBoot else {
            Issue.record("libvirt gave no CPU times: \(String(describing: client.estimatedBoot))")
            return
        }
        let uptime = try #require(Double(try String(contentsOfFile: "/proc/uptime", encoding: .utf8).split(separator: " ")[0]))
        let now = Date()
        let kernel = Int((now.timeIntervalSince1970 - uptime).rounded())
        // The estimate runs late by what the counters miss, never early by more than rounding.
        #expect(estimate >= kernel - 2, "estimate \(estimate), kernel \(kernel)")
        #expect(HostBoot.estimated(bootTime: estimate).isLater(than: .estimated(bootTime: kernel), now: now) == false,
                "estimate \(estimate) is \(estimate - kernel) s after the kernel's boot \(kernel): outside the tolerance")
    }
}
