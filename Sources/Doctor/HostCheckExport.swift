public import Exporter
import Foundation
public import Monitor
public import Policy

/// Publishes the daemon's host checks and its configuration state through the exporter: the
/// `mdev_host_check` one-hot gauge and the landing page's "Configuration" and "Host checks" sections.
public struct HostCheckExport: MetricsContributor, LandingContributor {
    let results: HostCheckResults
    let metrics: PolicyMetrics
    let configFile: String

    public init(results: HostCheckResults, metrics: PolicyMetrics, configFile: String) {
        self.results = results
        self.metrics = metrics
        self.configFile = configFile
    }

    public func contribute(to writer: inout MetricsWriter, snapshot: IndexSnapshot) {
        writer.family("mdev_host_check", type: .gauge,
                      help: "Result of each host check (as mdevmon doctor), one-hot over status (pass, warn, fail); run at start-up and on SIGHUP.")
        writer.family("mdev_host_check_last_run_timestamp_seconds", type: .gauge,
                      help: "When the host checks last ran, in seconds since the epoch.")
        guard let report = results.report else { return }
        for check in report.checks {
            for status in HostCheck.Status.allCases {
                writer.sample("mdev_host_check", labels: ["check": check.id, "status": status.rawValue],
                              value: check.status == status ? 1 : 0)
            }
        }
        writer.sample("mdev_host_check_last_run_timestamp_seconds", value: report.time)
    }

    public func landingSections(snapshot: IndexSnapshot) -> [LandingSection] {
        let s = metrics.snapshot
        let result = s.reloadSuccessful ? "loaded successfully" : "invalid, previous configuration kept: \(s.lastReloadError ?? "")"
        let config = LandingSection(
            title: "Configuration", columns: ["Item", "Value"],
            rows: [
                ["File", configFile],
                ["Last load", Self.time(s.lastReloadAttempt)],
                ["Result", result],
                ["Last successful load", Self.time(s.lastReloadSuccess)],
            ])
        guard let report = results.report else {
            return [config, LandingSection(title: "Host checks", columns: [], rows: [], emptyText: "Not run yet (they run after the first sync).")]
        }
        let checks = LandingSection(
            title: "Host checks (\(Self.time(report.time)))",
            columns: ["Check", "Status", "Finding", "Fix"],
            rows: report.checks.map { c in
                let details = c.details.isEmpty ? "" : ": " + c.details.joined(separator: "; ")
                return [c.id, c.status.rawValue.uppercased(), c.summary + details, c.status == .pass ? "" : (c.fix ?? "")]
            })
        return [config, checks]
    }

    static func time(_ seconds: Double) -> String {
        Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle())
    }
}
