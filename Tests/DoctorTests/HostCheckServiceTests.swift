@testable import Doctor
import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// The daemon's runs judge the configuration it loaded, never the file again.
@Suite struct HostCheckServiceTests {
    /// One run with `loaded` as the configuration in effect; its config finding and the journal.
    func configFinding(_ loaded: HostDoctor.LoadedConfig) async throws -> (HostCheck, LogCapture) {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = LogCapture()
        let service = HostCheckService(
            uri: "test:///none", readOnly: true, inputs: HostDoctor.Inputs(stateDir: dir.path), config: { loaded },
            snapshot: { DeviceIndex(uri: "test:///none").snapshot }, waitForFirstSync: {},
            probe: { LibvirtProbe(uri: $0, readOnly: $1, connectError: "not probed") }, logger: log.logger)
        await service.runChecks()
        let checks = try #require(service.results.report?.checks)
        return (try #require(checks.first { $0.id == HostCheckID.config }), log)
    }

    @Test func aLoadedConfigurationPassesWhateverTheFileSaysNow() async throws {
        let (check, _) = try await configFinding(HostDoctor.LoadedConfig(file: "/nonexistent/mdevmon.yaml", config: PolicyConfig()))
        #expect(check.status == .pass && check.summary == "configuration /nonexistent/mdevmon.yaml is valid")
    }

    @Test func aFailedReloadIsReportedWithItsError() async throws {
        let error = "config /etc/mdevmon/mdevmon.yaml:1: dry_run: must be true or false"
        let (check, log) = try await configFinding(
            HostDoctor.LoadedConfig(file: "/etc/mdevmon/mdevmon.yaml", config: PolicyConfig(), loadError: error))
        #expect(check.status == .fail && check.summary == error)
        #expect(check.fix?.hasPrefix("correct /etc/mdevmon/mdevmon.yaml") == true)
        let journaled = log.records(.hostCheckFailed).filter { $0.value(LogKey.checkID) == HostCheckID.config }
        #expect(journaled.count == 1)
    }
}
