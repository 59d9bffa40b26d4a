import Foundation
import Logging
import Monitor
import Policy
import TestSupport
import Testing

/// The restore policy against the real libvirtd after a simulated reboot: the state file names
/// another boot. This machine has no mdev-capable parent: by default the restores wait for it to offer
/// the type; with `wait_for_type: false` libvirt refuses every start, which exercises the retry, the
/// deadline and giving up.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct PolicyRestoreTests {
    struct Setup {
        let owned: [String]
        let excluded: String
        let stateDir: TemporaryDirectory
        let config: PolicyConfig
    }

    /// Defines three mdevs, writes a previous boot's state file listing all three as active, and
    /// owns two of them (`uuids` keeps the policy off other tests' devices; `exclude_uuids` drops the third).
    static func setUp(owned: [String], excluded: String, dryRun: Bool, waitForType: Bool = false) throws -> Setup {
        for uuid in owned + [excluded] { _ = try LibvirtHost.define(uuid: uuid) }
        let stateDir = try TemporaryDirectory()
        let current = try #require(BootID.current())
        let previous = PersistedState(bootID: "previous-\(UUID().uuidString.lowercased())", active: (owned + [excluded]).map {
            PersistedState.Device(uuid: $0, parent: LibvirtHost.pciParent.name, mdevType: "nvidia-63", attrs: [], persistent: true)
        })
        #expect(previous.bootID != current)
        try StateStore(directory: stateDir.path).save(previous)

        let config = try PolicyConfig.parse("""
            dry_run: \(dryRun)
            ownership:
              uuids: [\((owned + [excluded]).map { $0.uppercased() }.joined(separator: ", "))]
              exclude_uuids: [\(excluded)]
            policies:
              restore:
                wait_for_type: \(waitForType)  # false: attempt on this host's PCI parent, which offers no mdev types
                retry_initial: 50ms
                retry_max: 200ms
                deadline: 1500ms
            """, file: "restore-test.yaml")
        return Setup(owned: owned, excluded: excluded, stateDir: stateDir, config: config)
    }

    @Test func retriesOwnedDevicesUntilTheDeadlineThenGivesUp() async throws {
        let owned = [LibvirtHost.newUUID(), LibvirtHost.newUUID()], excluded = LibvirtHost.newUUID()
        defer { for uuid in owned + [excluded] { LibvirtHost.cleanup(uuid: uuid) } }
        let s = try Self.setUp(owned: owned, excluded: excluded, dryRun: false)
        defer { s.stateDir.remove() }
        let log = LogCapture()

        try await withPolicy(config: s.config, stateDir: s.stateDir.path, log: log) { monitor, policy in
            #expect(await eventually(timeout: .seconds(30)) { policy.metrics.snapshot.restore("gave_up") == 2 }, "did not give up on both")
            let metrics = policy.metrics.snapshot
            #expect(metrics.restore("failure") >= 4, "each owned device fails at least twice")
            #expect(metrics.restore("success") == 0 && metrics.restore("skipped") == 0)
            #expect(metrics.pending["restore"] == 0)

            for uuid in s.owned {
                let attempts = log.records(.restoreAttempted, uuid: uuid)
                let retried = log.records(.restoreFailed, uuid: uuid)
                let gaveUp = log.records(.restoreGaveUp, uuid: uuid)
                #expect(attempts.count >= 2, "\(uuid): \(attempts.count) attempts")
                #expect(retried.count == attempts.count - 1, "every failure but the last is retried")
                #expect(gaveUp.count == 1)
                let last = try #require(gaveUp.first)
                #expect(last.level == .error)
                #expect(last.message.contains("Unable to") && last.message.contains("mediated device"), "\(last.message)")
                // libvirt's own error, read right after the failing call: its message and a real code.
                #expect(last.value(LogKey.error)?.contains("Unable to") == true, "\(last.metadata)")
                let code = try #require(last.value(LogKey.libvirtErrorCode).flatMap { Int($0) }, "no libvirt error code: \(last.metadata)")
                #expect(code != 0, "libvirt error code 0 (the error was read too late)")
                #expect(last.value(LogKey.mdevParent) == LibvirtHost.pciParent.name)
                #expect(retried.allSatisfy { $0.level == .warning && $0.message.contains("Unable to") })
                // libvirt refused: the device is still defined and inactive.
                #expect(monitor.device(uuid: uuid)?.active == false)
            }
            #expect(metrics.restore("failure") == s.owned.map { log.records(.restoreAttempted, uuid: $0).count }.reduce(0, +))
            #expect(log.records.allSatisfy { $0.value(LogKey.mdevUUID) != s.excluded }, "the excluded device was considered")
            #expect(log.records(.restoreAttempted).count == metrics.restore("failure"), "an attempt on a device not owned")
        }
    }

    /// The default: the restores wait for this host's PCI parent (which libvirt knows, offering no mdev
    /// types: no vendor driver) to offer their type. Waiting is not failing: nothing is attempted, nothing
    /// is counted, nothing is said at warning or above, and the wait is visible.
    @Test func waitsForTheParentToOfferTheTypeWithoutAttempting() async throws {
        let owned = [LibvirtHost.newUUID(), LibvirtHost.newUUID()], excluded = LibvirtHost.newUUID()
        defer { for uuid in owned + [excluded] { LibvirtHost.cleanup(uuid: uuid) } }
        let s = try Self.setUp(owned: owned, excluded: excluded, dryRun: false, waitForType: true)
        defer { s.stateDir.remove() }
        let log = LogCapture()

        try await withPolicy(config: s.config, stateDir: s.stateDir.path, log: log) { monitor, policy in
            #expect(await eventually(timeout: .seconds(30)) { policy.metrics.snapshot.waiting.count == 2 }, "\(policy.metrics.snapshot.waiting)")
            let waiting = policy.metrics.snapshot.waiting.values.sorted()
            #expect(waiting.map(\.uuid) == s.owned.sorted())
            #expect(waiting.allSatisfy { $0.reason == .type && $0.parent == LibvirtHost.pciParent.name && $0.mdevType == "nvidia-63" })
            #expect(monitor.index.snapshot.state.parents[LibvirtHost.pciParent.name] == nil, "libvirt lists this host's PCI device as an mdev parent")
            for uuid in s.owned {
                let said = log.records.filter { $0.value(LogKey.mdevUUID) == uuid && $0.message.contains("waiting for parent") }
                #expect(said.map(\.message) == ["mdev \(uuid): waiting for parent \(LibvirtHost.pciParent.name) to offer type nvidia-63"])
                #expect(said.allSatisfy { $0.level == .info })
            }
            let metrics = policy.metrics.snapshot
            #expect(metrics.pending["restore"] == 2)
            #expect(metrics.restore("failure") == 0 && metrics.restore("gave_up") == 0 && metrics.restore("success") == 0)
            #expect(log.records(.restoreAttempted).isEmpty && log.records(.restoreFailed).isEmpty)
            #expect(!log.records.contains { $0.level >= .warning && s.owned.contains($0.value(LogKey.mdevUUID) ?? "") })

            // `mdevmon list` reads the daemon's state file (changing nothing) and says what each waits for.
            #expect(await eventually(timeout: .seconds(10)) {
                Set(((try? StateStore(directory: s.stateDir.path).peek()) ?? nil)?.pending.map(\.uuid) ?? []) == Set(s.owned)
            })
            let list = LibvirtHost.run(mdevmonBinary, ["list", "--state.dir", s.stateDir.path])
            #expect(list.status == 0, "\(list.err)")
            let rows = list.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            #expect(rows.contains(["RESTORE_PENDING", "PARENT", "TYPE", "WAITING_FOR"]), "\(list.out)")
            for uuid in s.owned {
                #expect(rows.contains([uuid, LibvirtHost.pciParent.name, "nvidia-63", "type"]), "\(list.out)")
            }
        }
    }

    /// A dry run attempts nothing and keeps its plan: the state file still lists both devices as pending.
    /// A reload to real mode cannot act over the read-only connection and keeps the plan too; a restart in
    /// real mode on the same boot then acts on exactly the devices the dry run named (libvirt refuses them
    /// here, which proves the attempts reached libvirt).
    @Test func dryRunAttemptsNothingAndKeepsThePlanForRealMode() async throws {
        let owned = [LibvirtHost.newUUID(), LibvirtHost.newUUID()], excluded = LibvirtHost.newUUID()
        defer { for uuid in owned + [excluded] { LibvirtHost.cleanup(uuid: uuid) } }
        let s = try Self.setUp(owned: owned, excluded: excluded, dryRun: true)
        defer { s.stateDir.remove() }
        let log = LogCapture()
        let store = StateStore(directory: s.stateDir.path)
        var real = s.config
        real.dryRun = false

        try await withPolicy(config: s.config, stateDir: s.stateDir.path, log: log) { _, policy in
            #expect(await eventually(timeout: .seconds(30)) { policy.metrics.snapshot.restore("dry_run") == 2 })
            // The plan survives the dry run: both devices stay pending, in the metrics and in the state file.
            #expect(policy.metrics.snapshot.pending["restore"] == 2)
            #expect(await eventually(timeout: .seconds(10)) {
                if case .loaded(let saved) = store.load() { return Set(saved.pending.map(\.uuid)) == Set(s.owned) }
                return false
            }, "the state file no longer lists the dry run's devices as pending")
            let metrics = policy.metrics.snapshot
            #expect(metrics.restore("failure") == 0 && metrics.restore("gave_up") == 0 && metrics.restore("success") == 0)
            for uuid in s.owned {
                let would = log.records(.restoreAttempted, uuid: uuid)
                #expect(would.count == 1)
                #expect(would.first?.message.hasPrefix("dry run: would start mdev \(uuid)") == true)
                #expect(log.records(.restoreFailed, uuid: uuid).isEmpty)
            }
            #expect(log.records.allSatisfy { $0.value(LogKey.mdevUUID) != s.excluded })
            #expect(log.records(.restoreFailed).isEmpty && log.records(.restoreGaveUp).isEmpty)

            // SIGHUP to real mode: the read-only connection cannot act; the devices stay planned.
            policy.update(config: real)
            #expect(await eventually(timeout: .seconds(10)) {
                s.owned.allSatisfy { uuid in log.records.contains { $0.value(LogKey.mdevUUID) == uuid && $0.message.contains("read-only until mdevmon restarts") } }
            })
            #expect(policy.metrics.snapshot.pending["restore"] == 2)
            #expect(log.records(.restoreAttempted).count == 2, "an attempt over the read-only connection")
        }

        // Restarted in real mode on the same boot: the plan is resumed, on exactly the dry run's devices.
        let second = LogCapture()
        try await withPolicy(config: real, stateDir: s.stateDir.path, log: second) { _, policy in
            #expect(await eventually(timeout: .seconds(30)) { policy.metrics.snapshot.restore("gave_up") == 2 }, "real mode did not act")
            for uuid in s.owned {
                #expect(second.records(.restoreAttempted, uuid: uuid).contains { $0.message.hasPrefix("restoring mdev \(uuid)") })
            }
            #expect(second.records.allSatisfy { $0.value(LogKey.mdevUUID) != s.excluded })
        }
    }
}
