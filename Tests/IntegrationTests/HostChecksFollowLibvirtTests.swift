import Foundation
import TestSupport
import Testing

/// The daemon's host checks follow libvirt's events: a domain defined with a missing mdev turns
/// `domains_blocked` to fail, and undefining it back to pass, with no SIGHUP.
@Suite(.serialized, .enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct HostChecksFollowLibvirtTests {
    @Test func domainsBlockedFollowsADomainDefinedAndUndefined() async throws {
        let missing = LibvirtHost.newUUID()
        let domain = "mdevmon-follow-\(missing.prefix(8))"
        defer { LibvirtHost.virsh("undefine", domain) }
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let fail = #"mdev_host_check{check="domains_blocked",status="fail"}"#
        let pass = #"mdev_host_check{check="domains_blocked",status="pass"}"#
        #expect(await daemon.waitUntilSynced(), "\(daemon.stderrTail)")
        #expect(await eventually(timeout: .seconds(30)) { daemon.value(pass) == 1 }, "\(daemon.stderrTail)")

        try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [missing])
        #expect(await eventually(timeout: .seconds(15)) { daemon.value(fail) == 1 }, "domains_blocked did not follow the define: \(daemon.stderrTail)")
        #expect(daemon.stderr.contains("host check domains_blocked failed: 1 defined domain(s) could not start now"), "\(daemon.stderrTail)")

        LibvirtHost.virsh("undefine", domain)
        #expect(await eventually(timeout: .seconds(15)) { daemon.value(pass) == 1 }, "domains_blocked did not follow the undefine: \(daemon.stderrTail)")
        #expect(daemon.stderr.components(separatedBy: "host check domains_blocked passed").count == 3, "once at start, once after the undefine")
    }
}
