import Foundation
import TestSupport
import Testing

/// A real Prometheus server scrapes a real mdevmon: a device defined with `virsh` shows up in its query
/// API with the expected values, and after `nodedev-undefine` its series are gone from the next scrape.
@Suite(.enabled(if: AlertingStack.stackEnabled, "needs libvirtd and prometheus (CI=true makes this mandatory)"))
struct PrometheusScrapeTests {
    @Test(.timeLimit(.minutes(3)))
    func virshDefinedDeviceAppearsInPrometheusAndVanishesAfterUndefine() async throws {
        try #require(AlertingStack.installed(AlertingStack.prometheus), "apt-get install prometheus")
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        try #require(await daemon.waitUntilSynced(), "daemon never synced; stderr:\n\(daemon.stderrTail)")

        let promPort = try Loopback.freePort()
        let promDir = daemon.dir.path + "/prometheus"
        try FileManager.default.createDirectory(atPath: promDir, withIntermediateDirectories: true)
        let target = "127.0.0.1:\(daemon.port)"
        try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: mdevmon
                static_configs:
                  - targets: ['\(target)']
            """.write(toFile: promDir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let log = promDir + "/prometheus.log"
        let prometheus = try AlertingProcess.spawn(AlertingStack.prometheus, [
            "--config.file=\(promDir)/prometheus.yml", "--storage.tsdb.path=\(promDir)/tsdb",
            "--web.listen-address=127.0.0.1:\(promPort)",
        ], log: log)
        defer { AlertingProcess.stop([prometheus]) }
        let prom = AlertingAPI(base: "http://127.0.0.1:\(promPort)")
        func promLog() -> String {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(10).joined(separator: "\n")
        }
        let up = await AlertingNet.poll(timeout: .seconds(30)) {
            prom.query("up{instance=\"\(target)\"} == 1").count == 1
        }
        try #require(up, "Prometheus never scraped mdevmon:\n\(promLog())")

        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        let name = try LibvirtHost.define(uuid: uuid)

        // Each family's sample for this device, as Prometheus stores it.
        func sample(_ family: String) -> (labels: [String: String], value: String)? {
            let result = prom.query("\(family){uuid=\"\(uuid)\"}")
            guard result.count == 1, let metric = result[0]["metric"] as? [String: String],
                  let value = result[0]["value"] as? [Any], value.count == 2 else { return nil }
            return (metric, value[1] as? String ?? "")
        }
        let seen = await AlertingNet.poll(timeout: .seconds(30)) { sample("mdev_device_info") != nil }
        try #require(seen, "mdev_device_info for \(uuid) never reached Prometheus:\n\(promLog())")

        let info = try #require(sample("mdev_device_info"))
        #expect(info.value == "1")
        #expect(info.labels["job"] == "mdevmon" && info.labels["instance"] == target)
        #expect(info.labels["parent"] == LibvirtHost.pciParent.name)
        #expect(info.labels["mdev_type"] == "nvidia-63")
        #expect(info.labels["name"] == name)
        #expect(info.labels["iommu_group"] != nil)
        // Defined, not started (this host cannot start it), autostart off, no domain references it.
        for (family, expected) in [
            ("mdev_device_persistent", "1"), ("mdev_device_active", "0"), ("mdev_device_autostart", "0"),
            ("mdev_device_domain_references", "0"),
        ] {
            let s = sample(family)
            #expect(s?.value == expected, "\(family){uuid=\"\(uuid)\"} = \(s?.value ?? "absent"), expected \(expected)")
            #expect(s?.labels["parent"] == LibvirtHost.pciParent.name, "\(family) parent label")
        }

        // Undefine. libvirt announces it when its mdevctl watch has re-read the definitions (its own
        // pace, over a second on a loaded host), so first wait until the daemon has applied the event,
        // then for the first Prometheus scrape that began after that: the series must be gone from it.
        let undefine = LibvirtHost.virsh("nodedev-undefine", name)
        try #require(undefine.status == 0, "nodedev-undefine: \(undefine.err)")
        let applied = await AlertingNet.poll(timeout: .seconds(30), every: .milliseconds(50)) {
            daemon.metrics().map { !$0.contains(uuid) } ?? false
        }
        try #require(applied, "the daemon still exports \(uuid) 30 s after the undefine; stderr:\n\(daemon.stderrTail)")
        let appliedAt = Date().timeIntervalSince1970
        let scrapedAfter = await AlertingNet.poll(timeout: .seconds(30)) {
            let r = prom.query("timestamp(up{instance=\"\(target)\"})")
            guard let value = r.first?["value"] as? [Any], value.count == 2, let text = value[1] as? String,
                  let ts = Double(text) else { return false }
            return ts > appliedAt
        }
        try #require(scrapedAfter, "no scrape after the undefine:\n\(promLog())")
        let left = prom.query("{__name__=~\"mdev_.*\", uuid=\"\(uuid)\"}")
        #expect(left.isEmpty, "series of \(uuid) still in Prometheus after the next scrape: \(left)")
    }
}
