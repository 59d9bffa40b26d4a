import Foundation
import TestSupport
import Testing

/// `deploy/prometheus/targets/remote-hosts.yml` read by the shipped `scrape.yml`: every remote target
/// names its libvirt host and the host becomes the series' `instance`; hypervisor targets keep theirs.
/// (A remote instance itself leaves out the host checks of the watcher's files: `HostDoctor.evaluate`.)
@Suite(.enabled(if: LibvirtHost.required || AlertingStack.installed(AlertingStack.prometheus),
                "needs prometheus (CI=true makes this mandatory)"))
struct RemoteTargetsTests {
    static let targets = AlertingStack.repo + "/deploy/prometheus/targets/remote-hosts.yml"

    /// What a watcher's instance serves, as far as this test looks: up, and one finding per host check.
    static let exposition = """
        # TYPE mdev_libvirt_up gauge
        mdev_libvirt_up 1
        # TYPE mdev_host_check gauge
        mdev_host_check{check="libvirt",status="pass"} 1
        mdev_host_check{check="mdevctl",status="fail"} 1
        mdev_host_check{check="udev_rules",status="warn"} 1
        mdev_host_check{check="kernel_modules",status="fail"} 1
        mdev_host_check{check="mdev_parents",status="pass"} 1
        mdev_host_check{check="unparented_mdevs",status="pass"} 1
        mdev_host_check{check="service_unit",status="warn"} 1
        mdev_host_check{check="state_dir",status="pass"} 1

        """

    @Test func everyRemoteTargetNamesItsLibvirtHost() throws {
        let text = try String(contentsOfFile: Self.targets, encoding: .utf8)
        let groups = text.components(separatedBy: "\n- targets:").count - 1
        let hosts = AlertingRulesTests.values(of: "libvirt_host", in: text)
        #expect(groups >= 2 && hosts.count == groups && Set(hosts).count == groups, "\(groups) groups, libvirt_host \(hosts)")
    }

    @Test func prometheusLabelsRemoteSeriesByTheirHost() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let watcher = try StaticHTTPServer(body: Self.exposition)
        defer { watcher.stop() }
        let hypervisor = try StaticHTTPServer(body: Self.exposition)
        defer { hypervisor.stop() }
        let promPort = try Loopback.freePort()

        // The shipped scrape.yml and targets; the watcher's addresses point at the stand-in.
        let promDir = dir.path + "/prometheus"
        try FileManager.default.createDirectory(atPath: promDir + "/targets", withIntermediateDirectories: true)
        try AlertingStackTests.testScrapeConfig(alertmanager: "127.0.0.1:1")
            .write(toFile: promDir + "/scrape.yml", atomically: true, encoding: .utf8)
        try String(contentsOfFile: AlertingStack.rules, encoding: .utf8)
            .write(toFile: promDir + "/mdevmon.rules.yml", atomically: true, encoding: .utf8)
        let shipped = try String(contentsOfFile: Self.targets, encoding: .utf8)
        let addresses = Set(shipped.matches(of: /'([^']+:\d+)'/).map { String($0.output.1) })
        try #require(addresses.count >= 2, "remote-hosts.yml targets: \(addresses)")
        var remote = shipped
        // The same stand-in behind every instance port: the targets differ by their labels.
        for address in addresses { remote = remote.replacingOccurrences(of: address, with: "127.0.0.1:\(watcher.port)") }
        try remote.write(toFile: promDir + "/targets/remote-hosts.yml", atomically: true, encoding: .utf8)
        let local = "127.0.0.1:\(hypervisor.port)"
        try "- targets: ['\(local)']\n".write(toFile: promDir + "/targets/hypervisors.yml", atomically: true, encoding: .utf8)

        let log = dir.path + "/prometheus.log"
        let prometheus = try AlertingProcess.spawn(AlertingStack.prometheus, [
            "--config.file=\(promDir)/scrape.yml", "--storage.tsdb.path=\(dir.path)/tsdb",
            "--web.listen-address=127.0.0.1:\(promPort)",
        ], log: log)
        defer { AlertingProcess.stop([prometheus]) }
        let prom = AlertingAPI(base: "http://127.0.0.1:\(promPort)")
        let hosts = Set(AlertingRulesTests.values(of: "libvirt_host", in: shipped))
        let scraped = await AlertingNet.poll(timeout: .seconds(60)) {
            prom.labelValues("instance", match: "mdev_libvirt_up").count == hosts.count + 1
        }
        let logText = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try #require(scraped, "instances: \(prom.labelValues("instance", match: "mdev_libvirt_up"))\n\(logText().suffix(2000))")

        #expect(Set(prom.labelValues("instance", match: "mdev_libvirt_up")) == hosts.union([local]))
        #expect(Set(prom.labelValues("libvirt_host", match: "mdev_libvirt_up{job=\"mdevmon\"}")) == hosts)
        for host in hosts {
            let checks = Set(prom.labelValues("check", match: "mdev_host_check{instance=\"\(host)\"}"))
            #expect(checks.count == 8, "\(host): every check served is kept: \(checks)")
        }
        let localChecks = Set(prom.labelValues("check", match: "mdev_host_check{instance=\"\(local)\"}"))
        #expect(localChecks.count == 8, "a hypervisor keeps every check: \(localChecks)")
    }
}
