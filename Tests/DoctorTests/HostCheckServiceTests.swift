@testable import Doctor
import Foundation
import Logging
import Monitor
@testable import Policy
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

/// A daemon started before libvirt answers runs the checks at the first-sync timeout, with libvirt unread;
/// once the first sync completes it runs them again, so the index's checks are not left "not checked".
@Suite struct HostCheckFirstSyncTests {
    @Test func aRunAtTheTimeoutIsFollowedByOneAfterTheFirstSync() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let index = DeviceIndex(uri: "test:///late")
        let synced = Latch()
        let log = LogCapture()
        let service = HostCheckService(
            uri: "test:///late", readOnly: true, inputs: HostDoctor.Inputs(stateDir: dir.path),
            config: { [file = dir.path + "/mdevmon.yaml"] in HostDoctor.LoadedConfig(file: file, config: PolicyConfig()) },
            snapshot: { index.snapshot }, waitForFirstSync: { await synced.wait() }, firstSyncTimeout: .milliseconds(10),
            probe: { LibvirtProbe(uri: $0, readOnly: $1, version: LibvirtVersion(major: 9, minor: 0, micro: 0)) },
            logger: log.logger)
        func status(_ id: String) -> HostCheck.Status? { service.results.report?.checks.first { $0.id == id }?.status }
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            defer { group.cancelAll() }
            #expect(await eventually { status(HostCheckID.domainsBlocked) == .warn }, "the run at the timeout")
            #expect(service.results.report?.checks.first { $0.id == HostCheckID.domainsBlocked }?.summary == "not checked: libvirt was not read")
            await index.replace(with: IndexState())
            synced.signal()
            #expect(await eventually { status(HostCheckID.domainsBlocked) == .pass }, "no run after the first sync")
        }
    }
}

/// Between runs the index-only checks follow the index: the vendor driver registering the parent clears
/// `unparented_mdevs` and `domains_blocked` with no SIGHUP, and only the status changes are journaled.
@Suite struct HostCheckFollowTests {
    @Test func theBootPathFailureClearsWhenTheParentAppears() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let index = DeviceIndex(uri: "test:///follow")
        let uuid = Sample.uuid()
        let device = Sample.device(uuid, active: false, autostart: true)
        // At boot: the mdev is defined, its GPU's vendor driver not up yet, an autostart domain waits for it.
        await index.replace(with: Sample.state([device], domains: [Sample.domain("vm1", uuids: [uuid], autostart: true)], parents: []))
        let log = LogCapture()
        let service = await HostCheckService.following(index, dir: dir, logger: log.logger)
        func status(_ id: String) -> HostCheck.Status? { service.results.report?.checks.first { $0.id == id }?.status }
        func journaled(_ id: String) -> [LogRecord] { log.records.filter { $0.value(LogKey.checkID) == id } }
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            defer { group.cancelAll() }
            #expect(await eventually { status(HostCheckID.unparentedMdevs) == .fail })
            #expect(status(HostCheckID.domainsBlocked) == .fail)

            // The driver registers the parent and libvirt starts the mdev: both checks pass, with no reload.
            await index.mutate { state in
                state.upsertParent(Sample.parentDevice()) + state.upsertDevice(device.definition, flags: Sample.flags(active: true, autostart: true))
            }
            #expect(await eventually { status(HostCheckID.unparentedMdevs) == .pass }, "unparented_mdevs did not follow the index")
            #expect(await eventually { status(HostCheckID.domainsBlocked) == .pass }, "domains_blocked did not follow the index")
            #expect(await eventually { journaled(HostCheckID.unparentedMdevs).map(\.level) == [.error, .info] })
            #expect(await eventually { journaled(HostCheckID.domainsBlocked).map(\.level) == [.error, .info] })

            // A change that leaves the verdicts as they were is judged and journals nothing.
            let entries = log.records.count, follows = service.results.follows
            await index.mutate { state in state.upsertDomain(Sample.domain("vm2", uuids: [])) }
            #expect(await eventually { service.results.follows > follows }, "the change was not followed")
            #expect(log.records.count == entries, "\(log.records.dropFirst(entries).map(\.message))")
            // The next one that matters is journaled once.
            await index.mutate { state in state.removeParent(named: Sample.parent) }
            #expect(await eventually { status(HostCheckID.unparentedMdevs) == .fail })
            #expect(await eventually { journaled(HostCheckID.unparentedMdevs).map(\.level) == [.error, .info, .error] })
        }
    }
}

/// A verdict can change without an index change (a restore gives up): the policy's evaluation asks the
/// index checks to be judged again.
@Suite struct HostCheckVerdictFollowTests {
    @Test func aVerdictChangeAloneIsFollowed() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let index = DeviceIndex(uri: "test:///verdicts")
        let uuid = Sample.uuid()
        await index.replace(with: Sample.state([Sample.device(uuid)], domains: [Sample.domain("vm1", uuids: [uuid], autostart: true)]))
        // At boot the policy says the domain waits for a restore; later the restore gives up.
        let metrics = PolicyMetrics()
        metrics.setProblems([ReferenceProblem(domain: "vm1", uuid: uuid, reason: .restoring, domainAutostart: true)], enabled: true)
        let service = await HostCheckService.following(index, dir: dir, referenceProblems: { metrics.snapshot.problems },
                                                       logger: LogCapture().logger)
        metrics.onReferencesEvaluated { service.requestFollow() }
        func status() -> HostCheck.Status? { service.results.report?.checks.first { $0.id == HostCheckID.domainsBlocked }?.status }
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            defer { group.cancelAll() }
            #expect(await eventually { status() == .pass }, "a restore under way is no alarm")
            metrics.setProblems([ReferenceProblem(domain: "vm1", uuid: uuid, reason: .inactive, domainAutostart: true)], enabled: true)
            #expect(await eventually { status() == .fail }, "the give-up was not followed")
        }
    }
}

extension HostCheckService {
    /// A service judging `index` after an immediate first sync, following its changes 20 ms after each,
    /// with the default configuration and a libvirt 9.0 probe.
    static func following(_ index: DeviceIndex, dir: TemporaryDirectory,
                          referenceProblems: @escaping @Sendable () -> [ReferenceProblem]? = { nil },
                          logger: Logger) async -> HostCheckService {
        HostCheckService(
            uri: index.snapshot.status.uri, readOnly: true, inputs: HostDoctor.Inputs(stateDir: dir.path),
            config: { [file = dir.path + "/mdevmon.yaml"] in HostDoctor.LoadedConfig(file: file, config: PolicyConfig()) },
            snapshot: { index.snapshot }, referenceProblems: referenceProblems, waitForFirstSync: {},
            probe: { LibvirtProbe(uri: $0, readOnly: $1, version: LibvirtVersion(major: 9, minor: 0, micro: 0)) },
            indexChanges: await index.subscribe(), settle: .milliseconds(20), logger: logger)
    }
}
