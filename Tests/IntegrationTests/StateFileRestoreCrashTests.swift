import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// 500 restores at once after a faked reboot, the state file written while they finish, and the
/// daemon SIGKILLed at random moments: the file always parses, and after the last restart it holds
/// exactly the final active set with nothing left pending.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct StateFileRestoreCrashTests {
    static let count = 500

    @Test func fiveHundredRestoresUnderRepeatedSIGKILL() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: mdevmonBinary), "build mdevmon first: \(mdevmonBinary)")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let stateDir = dir.path + "/state"
        let store = StateStore(directory: stateDir)
        let uuids = (0..<Self.count).map { _ in LibvirtHost.newUUID() }
        let written = StateFileCrashTests.Written()
        defer { written.removeAll() }
        try FileManager.default.createDirectory(atPath: StateFileCrashTests.mdevctlDir, withIntermediateDirectories: true)
        for uuid in uuids {
            let path = "\(StateFileCrashTests.mdevctlDir)/\(uuid)"
            written.add(path)
            _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"mdev_type": "nvidia-63", "start": "manual", "attrs": []}"#.utf8))
        }
        // The previous boot had all 500 active; this boot has them defined and inactive.
        try store.save(PersistedState(bootID: "previous-boot-\(UUID().uuidString)", active: uuids.map {
            PersistedState.Device(uuid: $0, parent: LibvirtHost.pciParent.name, mdevType: "nvidia-63", attrs: [], persistent: true)
        }))
        #expect(await eventually(timeout: .seconds(120)) {
            let listed = LibvirtHost.virsh("nodedev-list", "--cap", "mdev", "--all").out
            return uuids.allSatisfy { listed.contains($0.replacingOccurrences(of: "-", with: "_")) }
        }, "libvirt did not pick up the 500 mdevctl definitions")

        // Restores act for real (libvirt refuses each start here: no mdev parent in sysfs), owned by uuid.
        let config = """
            ownership:
              uuids: [\(uuids.joined(separator: ", "))]
            policies:
              restore:
                wait_for_type: false  # This host's PCI parent offers no mdev types: attempt anyway (libvirt refuses).
                retry_initial: 100ms
                retry_max: 200ms
                deadline: 1s
                max_concurrent: 4
            """
        var parsed = 0, killedWithPending = 0
        for round in 0..<5 {
            let daemon = try TestDaemon(config: config, stateDir: stateDir)
            defer { daemon.stop() }
            // Kill while restores are under way: once this boot's file lists pending restores, at a random moment.
            let underWay = await eventually(timeout: .seconds(60)) {
                if case .loaded(let s) = store.load() { return s.bootID == BootID.current() && !s.pending.isEmpty }
                return false
            }
            if underWay { killedWithPending += 1 }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...400)))
            #expect(daemon.process.isRunning, "round \(round): the daemon exited early: \(daemon.stderrTail)")
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()
            switch store.load() {
            case .loaded: parsed += 1
            case .missing: Issue.record("round \(round): the state file vanished")
            case .corrupt(let reason, _): Issue.record("round \(round): corrupt state file after SIGKILL: \(reason)")
            case .newer(_, let v, _), .unsupported(let v, _, _): Issue.record("round \(round): state file of format \(v)")
            }
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: stateDir)) ?? []
            #expect(!leftovers.contains { $0.contains(".corrupt-") }, "round \(round): \(leftovers)")
        }
        #expect(parsed == 5)
        #expect(killedWithPending >= 1, "no kill landed while restores were pending")

        // The last run finishes every restore (libvirt refuses, so each gives up at its deadline).
        let daemon = try TestDaemon(config: config, stateDir: stateDir)
        defer { daemon.stop() }
        #expect(await daemon.waitUntilSynced(timeout: .seconds(60)), "\(daemon.stderrTail)")
        #expect(await eventually(timeout: .seconds(180)) { daemon.value("mdev_policy_pending{policy=\"restore\"}") == 0 },
                "restores still pending: \(daemon.value("mdev_policy_pending{policy=\"restore\"}") ?? -1)")
        // The writer coalesces: the file follows within its delay; wait for it to say nothing is pending.
        #expect(await eventually(timeout: .seconds(10)) {
            if case .loaded(let s) = store.load() { return s.pending.isEmpty && s.bootID == BootID.current() }
            return false
        }, "state file still lists pending restores")
        guard case .loaded(let final) = store.load() else { Issue.record("no final state file"); return }
        let listing = LibvirtHost.run(mdevmonBinary, ["list", "--json"])
        try #require(listing.status == 0, "mdevmon list failed: \(listing.err)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let active = try decoder.decode(Listing.self, from: Data(listing.out.utf8)).devices.filter(\.active)
        #expect(Set(final.active.map(\.uuid)) == Set(active.map(\.uuid)), "state file active set differs from libvirt's")
        #expect(final.active.allSatisfy { !uuids.contains($0.uuid) }, "libvirt refused every start, yet one is saved active")
    }
}
