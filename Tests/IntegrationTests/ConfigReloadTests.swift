import Foundation
import Testing

/// SIGHUP to the real daemon: a valid file takes effect without losing the index, an invalid one keeps
/// the previous configuration and says why.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct ConfigReloadTests {
    static func config(references: Bool) -> String {
        "dry_run: true\npolicies:\n  domain_references:\n    enabled: \(references)\n"
    }

    // `virsh define` of a domain costs this host ~30 s (libvirt re-probes QEMU each time).
    @Test(.timeLimit(.minutes(4)))
    func sighupAppliesAValidFileAndKeepsTheOldOneOnAnInvalidFile() async throws {
        let device = LibvirtHost.newUUID(), missing = LibvirtHost.newUUID()
        let domain = "mdevmon-reload-\(device.prefix(8))"
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.cleanup(uuid: device)
        }
        _ = try LibvirtHost.define(uuid: device)
        let daemon = try TestDaemon(config: Self.config(references: false))
        defer { daemon.stop() }
        try #require(await daemon.waitUntilSynced(), "daemon never synced; stderr:\n\(daemon.stderrTail)")
        try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [device, missing])

        // Defined on this host's PCI parent, which offers no mdev types: it could not be started (issue 16).
        let inactive = "mdev_domain_reference_problem{domain=\"\(domain)\",uuid=\"\(device)\",reason=\"type_not_offered\"}"
        let absent = "mdev_domain_reference_problem{domain=\"\(domain)\",uuid=\"\(missing)\",reason=\"missing\"}"
        let referenced = "mdev_domain_device_info{domain=\"\(domain)\",uuid=\"\(device)\"}"
        let seen = await AlertingNet.poll(timeout: .seconds(30)) { daemon.value(referenced) == 1 }
        try #require(seen, "the daemon never saw \(domain); stderr:\n\(daemon.stderrTail)")
        #expect(daemon.value(inactive) == nil && daemon.value(absent) == nil, "the references policy is off")
        #expect(daemon.value("mdev_config_last_reload_successful") == 1)
        let syncedAt = try #require(daemon.value("mdev_index_last_sync_timestamp_seconds"))
        let reconnects = daemon.value("mdev_libvirt_reconnects_total")

        // Valid file, policy on: both problems appear, from the index the daemon already holds.
        try Self.config(references: true).write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        let appeared = await AlertingNet.poll(timeout: .seconds(10), every: .milliseconds(100)) {
            daemon.value(inactive) == 1 && daemon.value(absent) == 1
        }
        #expect(appeared, "problems after the reload; stderr:\n\(daemon.stderrTail)")
        #expect(daemon.stderr.contains("reloaded configuration \(daemon.configPath)"))

        // Invalid file: rejected with its line and field, old configuration (policy on) kept.
        try "dry_run: true\npolicies:\n  domain_references:\n    enabled: maybe\n"
            .write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        let rejected = await AlertingNet.poll(timeout: .seconds(10), every: .milliseconds(100)) {
            daemon.value("mdev_config_last_reload_successful") == 0
        }
        #expect(rejected, "stderr:\n\(daemon.stderrTail)")
        let errorLine = daemon.stderr.split(separator: "\n").first { $0.contains("reload of \(daemon.configPath) failed") }
        #expect(errorLine?.contains("level=error") == true, "stderr:\n\(daemon.stderrTail)")
        #expect(errorLine?.contains("\(daemon.configPath):4") == true, "names the line: \(errorLine ?? "none")")
        #expect(errorLine?.contains("policies.domain_references.enabled") == true, "names the field: \(errorLine ?? "none")")
        #expect(daemon.value(inactive) == 1 && daemon.value(absent) == 1, "the previous configuration still applies")
        #expect(daemon.process.isRunning)

        // Valid again, policy off: problems cleared; reloads never resynced or reconnected the index.
        try Self.config(references: false).write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        let cleared = await AlertingNet.poll(timeout: .seconds(10), every: .milliseconds(100)) {
            daemon.value("mdev_config_last_reload_successful") == 1 && daemon.value(inactive) == nil
        }
        #expect(cleared, "stderr:\n\(daemon.stderrTail)")
        #expect(daemon.value(absent) == nil)
        #expect(daemon.value("mdev_index_last_sync_timestamp_seconds") == syncedAt, "a reload must not resync")
        #expect(daemon.value("mdev_libvirt_reconnects_total") == reconnects)
        #expect(daemon.value(referenced) == 1, "the index still holds the domain")
    }

    /// A duration too large for the clocks once trapped in the loader and killed the daemon on SIGHUP; a
    /// zero retry delay was accepted. Both are errors naming the line and field, and the daemon stays up.
    @Test func sighupWithAnImpossibleValueKeepsTheDaemonAndItsConfiguration() async throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        try #require(await daemon.waitUntilSynced(), "daemon never synced; stderr:\n\(daemon.stderrTail)")
        for (value, problem) in [("1e20s", "'1e20s' is too long (at most 168h)"), ("0s", "'0s' must be at least 1ms")] {
            try "dry_run: true\npolicies:\n  restore:\n    retry_initial: \(value)\n"
                .write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            let rejected = await AlertingNet.poll(timeout: .seconds(10), every: .milliseconds(100)) {
                daemon.stderr.contains(problem)
            }
            #expect(rejected, "\(value): stderr:\n\(daemon.stderrTail)")
            let errorLine = daemon.stderr.split(separator: "\n").last { $0.contains("reload of \(daemon.configPath) failed") }
            #expect(errorLine?.contains("\(daemon.configPath):4: policies.restore.retry_initial: \(problem)") == true, "\(errorLine ?? "none")")
            #expect(daemon.process.isRunning, "\(value) killed the daemon: \(daemon.stderrTail)")
            #expect(daemon.value("mdev_config_last_reload_successful") == 0)
        }
    }
}
