import Doctor
import Foundation
import Monitor
import TestSupport
import Testing

/// This host as it is: stock Debian 12's `60-mdevctl.rules` runs `/usr/sbin/mdevctl`, mdevctl is
/// installed at `/usr/bin/mdevctl`, so the udev rule that starts autostart mdevs cannot run.
enum StockUdevRule {
    static let rule = "/usr/lib/udev/rules.d/60-mdevctl.rules"
    static let sbin = "/usr/sbin/mdevctl"

    /// The rule runs /usr/sbin/mdevctl, which does not exist, and nothing in /etc overrides the rule.
    static var isBroken: Bool {
        let text = (try? String(contentsOfFile: rule, encoding: .utf8)) ?? ""
        return text.contains(sbin) && !FileManager.default.fileExists(atPath: sbin)
            && !FileManager.default.fileExists(atPath: "/etc/udev/rules.d/60-mdevctl.rules")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/mdevctl")
    }

    /// Runs `body` with the symlink that repairs the rule, removing it afterwards even when `body` throws.
    static func withSymlink<T>(_ body: () async throws -> T) async throws -> T {
        try FileManager.default.createSymbolicLink(atPath: sbin, withDestinationPath: "/usr/bin/mdevctl")
        defer { try? FileManager.default.removeItem(atPath: sbin) }
        return try await body()
    }
}

/// `mdevmon doctor` on the real host and the daemon's start-up and SIGHUP checks.
@Suite(.serialized, .enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct DoctorTests {
    struct Report: Decodable {
        struct Entry: Decodable {
            var check: String
            var status: String
            var summary: String
            var details: [String]
            var fix: String?
        }
        var status: String
        var exitCode: Int
        var checks: [Entry]
        enum CodingKeys: String, CodingKey { case status, exitCode = "exit_code", checks }
        func entry(_ id: String) -> Entry? { checks.first { $0.check == id } }
    }

    static func doctor(_ dir: PolicyTempDir, json: Bool = true) -> (status: Int32, out: String, err: String) {
        LibvirtHost.run(mdevmonBinary, ["doctor", "--state.dir", dir.path, "--config.file", dir.path + "/mdevmon.yaml"]
                        + (json ? ["--json"] : []))
    }

    // `virsh define` of a domain costs this host ~30 s (libvirt re-probes QEMU each time).
    @Test(.timeLimit(.minutes(4)))
    func stockRuleFailsWithExit2AndTheSymlinkFixesIt() async throws {
        try #require(StockUdevRule.isBroken, "this host is expected to have Debian 12's broken 60-mdevctl.rules and no \(StockUdevRule.sbin)")
        let dir = try PolicyTempDir()
        defer { dir.remove() }
        try "dry_run: true\n".write(toFile: dir.path + "/mdevmon.yaml", atomically: true, encoding: .utf8)
        let missing = LibvirtHost.newUUID()
        let domain = "mdevmon-doctor-\(missing.prefix(8))"
        defer { LibvirtHost.virsh("undefine", domain) }
        try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [missing])

        let run = Self.doctor(dir)
        #expect(run.status == 2, "stderr: \(run.err)")
        let report = try JSONDecoder().decode(Report.self, from: Data(run.out.utf8))
        #expect(report.status == "fail" && report.exitCode == 2)
        #expect(report.checks.map(\.check) == HostCheckID.all)
        let udev = try #require(report.entry("udev_rules"))
        #expect(udev.status == "fail")
        #expect(udev.details.contains("\(StockUdevRule.rule):3 runs /usr/sbin/mdevctl, which does not exist"), "\(udev.details)")
        #expect(udev.fix == "ln -s /usr/bin/mdevctl /usr/sbin/mdevctl; then udevadm control --reload")
        let libvirt = try #require(report.entry("libvirt"))
        #expect(libvirt.status == "pass", "\(libvirt.summary)")
        // dry_run needs no write access: mdevmon asks for what it would use.
        #expect(libvirt.summary.hasPrefix("libvirt 9.") && libvirt.summary.contains("read-only, node-device driver present"), "\(libvirt.summary)")
        #expect(report.entry("mdevctl")?.status == "pass")
        #expect(report.entry("state_dir")?.status == "pass")
        #expect(report.entry("config")?.status == "pass")
        let blocked = try #require(report.entry("domains_blocked"))
        #expect(blocked.status == "fail" && blocked.details.contains("\(domain): mdev \(missing) is missing"), "\(blocked.details)")

        let text = Self.doctor(dir, json: false)
        #expect(text.status == 2)
        #expect(text.out.contains("FAIL  udev_rules"), "\(text.out)")
        #expect(text.out.contains("fix: ln -s /usr/bin/mdevctl /usr/sbin/mdevctl"))

        let fixed = try await StockUdevRule.withSymlink { Self.doctor(dir) }
        let after = try JSONDecoder().decode(Report.self, from: Data(fixed.out.utf8))
        #expect(after.entry("udev_rules")?.status == "pass", "\(after.entry("udev_rules").map { "\($0)" } ?? "none")")
        #expect(!FileManager.default.fileExists(atPath: StockUdevRule.sbin), "the symlink is removed")
    }

    @Test func invalidConfigFails() throws {
        let dir = try PolicyTempDir()
        defer { dir.remove() }
        try "dry_run: maybe\n".write(toFile: dir.path + "/mdevmon.yaml", atomically: true, encoding: .utf8)
        let run = Self.doctor(dir)
        #expect(run.status == 2)
        let report = try JSONDecoder().decode(Report.self, from: Data(run.out.utf8))
        let config = try #require(report.entry("config"))
        #expect(config.status == "fail" && config.summary.contains("mdevmon.yaml:1: dry_run: must be true or false"), "\(config)")
    }

    /// The daemon runs the checks after its first sync and again on SIGHUP: each finding journaled with
    /// its MESSAGE_ID and fix, exported as mdev_host_check, shown on the landing page.
    @Test func daemonJournalsExportsAndShowsTheChecks() async throws {
        try #require(StockUdevRule.isBroken, "this host is expected to have Debian 12's broken 60-mdevctl.rules")
        try Journald.ensureRunning()
        let daemon = try TestDaemon(extra: ["--log.target", "journal", "--log.level", "info"])
        defer { daemon.stop() }
        let failing = "mdev_host_check{check=\"udev_rules\",status=\"fail\"}"
        let exported = await AlertingNet.poll(timeout: .seconds(40), every: .milliseconds(200)) { daemon.value(failing) == 1 }
        try #require(exported, "no \(failing) 1; metrics:\n\(daemon.metrics() ?? "none")")
        #expect(daemon.value("mdev_host_check{check=\"udev_rules\",status=\"pass\"}") == 0)
        #expect(daemon.value("mdev_host_check{check=\"libvirt\",status=\"pass\"}") == 1)

        let entries = try await DaemonJournalTests.entries(.hostCheckFailed, pid: daemon.pid, ["CHECK_ID=udev_rules"])
        let entry = try #require(entries.first, "no journal entry for the failing check")
        #expect(entries.count == 1, "journaled once per run")
        #expect(entry["PRIORITY"] as? String == "3", "error")
        #expect(entry["CHECK_FIX"] as? String == "ln -s /usr/bin/mdevctl /usr/sbin/mdevctl; then udevadm control --reload")
        #expect((entry["MESSAGE"] as? String)?.contains("/usr/sbin/mdevctl") == true)
        let passed = try await DaemonJournalTests.entries(.hostCheckPassed, pid: daemon.pid, ["CHECK_ID=libvirt"])
        #expect(passed.count == 1)

        let page = AlertingNet.get(daemon.base + "/")
        #expect(page.ok)
        #expect(page.body.contains("<h2>Configuration</h2>") && page.body.contains(daemon.configPath))
        #expect(page.body.contains("Host checks") && page.body.contains("<td>udev_rules</td><td class=\"bad\">FAIL</td>"), "\(page.body)")

        // SIGHUP with the symlink in place: the checks run again and the rule passes.
        let firstRun = try #require(daemon.value("mdev_host_check_last_run_timestamp_seconds"))
        try await StockUdevRule.withSymlink {
            daemon.signal(SIGHUP)
            let rerun = await AlertingNet.poll(timeout: .seconds(20), every: .milliseconds(200)) {
                (daemon.value("mdev_host_check_last_run_timestamp_seconds") ?? 0) > firstRun
            }
            #expect(rerun, "the checks did not run again on SIGHUP")
            #expect(daemon.value("mdev_host_check{check=\"udev_rules\",status=\"pass\"}") == 1)
        }
        let again = try await DaemonJournalTests.entries(.hostCheckPassed, pid: daemon.pid, ["CHECK_ID=udev_rules"])
        #expect(again.count == 1, "the second run journaled the rule as passing")
    }

    /// A SIGHUP whose file fails to load keeps the configuration in effect; the checks that run after it
    /// report the reload's error (they judge what the daemon loaded, never parse the file themselves).
    @Test func failedReloadFailsTheConfigCheck() async throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        let passing = "mdev_host_check{check=\"config\",status=\"pass\"}"
        let ran = await AlertingNet.poll(timeout: .seconds(40), every: .milliseconds(200)) { daemon.value(passing) == 1 }
        try #require(ran, "no \(passing) 1; metrics:\n\(daemon.metrics() ?? "none")")
        let firstRun = try #require(daemon.value("mdev_host_check_last_run_timestamp_seconds"))

        try "dry_run: maybe\n".write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        let rerun = await AlertingNet.poll(timeout: .seconds(20), every: .milliseconds(200)) {
            (daemon.value("mdev_host_check_last_run_timestamp_seconds") ?? 0) > firstRun
        }
        #expect(rerun, "the checks did not run again on SIGHUP")
        #expect(daemon.value("mdev_host_check{check=\"config\",status=\"fail\"}") == 1)
        let page = AlertingNet.get(daemon.base + "/")
        #expect(page.body.contains("<td>config</td><td class=\"bad\">FAIL</td><td>config \(daemon.configPath):1: dry_run: must be true or false"),
                "\(page.body)")
    }
}
