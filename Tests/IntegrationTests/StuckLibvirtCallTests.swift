import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// libvirt's mdevctl callout made to hang, as a stuck vendor driver or udev would: a wrapper bind-mounted
/// over `/usr/bin/mdevctl` records each call and blocks while its flag file exists and the test process
/// lives (a killed test releases every held call). Listings and fetches never call mdevctl;
/// `nodedev-start` does, so a restore's start is the call that hangs.
final class MdevctlHang: Sendable {
    static let path = "/usr/bin/mdevctl"
    let dir: TemporaryDirectory
    var flag: String { dir.path + "/hold" }
    var log: String { dir.path + "/calls.log" }
    var script: String { dir.path + "/mdevctl" }

    init() throws {
        // A wrapper left mounted by a killed run would otherwise be copied as the real mdevctl.
        while LibvirtHost.run("/usr/bin/findmnt", [Self.path]).status == 0 {
            try #require(LibvirtHost.run("/usr/bin/umount", ["-l", Self.path]).status == 0, "cannot unmount a stale \(Self.path)")
        }
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: Self.path)).readData(ofLength: 4)
        try #require(head == Data([0x7f, 0x45, 0x4c, 0x46]), "\(Self.path) is not the mdevctl binary")
        dir = try TemporaryDirectory()
        let real = dir.path + "/mdevctl.real"
        try FileManager.default.copyItem(atPath: Self.path, toPath: real)
        try """
            #!/bin/sh
            echo "$*" >> \(log)
            while [ -e \(flag) ] && kill -0 \(getpid()) 2>/dev/null; do sleep 0.1; done
            exec \(real) "$@"

            """.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let mount = LibvirtHost.run("/usr/bin/mount", ["--bind", script, Self.path])
        try #require(mount.status == 0, "mount --bind: \(mount.err)")
    }

    func hold() { _ = FileManager.default.createFile(atPath: flag, contents: nil) }
    func release() { try? FileManager.default.removeItem(atPath: flag) }

    /// The argument lines of every mdevctl call so far.
    var calls: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Lets held calls go, waits for them to leave the wrapper, and puts mdevctl back.
    func remove() {
        release()
        let deadline = Date().addingTimeInterval(10)
        while LibvirtHost.run("/usr/bin/pgrep", ["-f", "^/bin/sh \(Self.path)"]).status == 0 && Date() < deadline { usleep(50_000) }
        if LibvirtHost.run("/usr/bin/umount", [Self.path]).status != 0 {
            LibvirtHost.run("/usr/bin/umount", ["-l", Self.path])
        }
        dir.remove()
    }
}

/// Holds every mdevctl call on the host while it runs, so it runs with the disruptive tests, alone
/// (`scripts/test.sh`, `MDEVMON_DISRUPTIVE=1`).
@Suite(.serialized, .enabled(if: disruptiveTestsEnabled, "set MDEVMON_DISRUPTIVE=1 (scripts/test.sh does)"))
struct StuckLibvirtCallTests {
    /// A restore's `nodedev-start` hangs in mdevctl: within the bound `/healthz` names the call, the gauge
    /// counts its age and the journal warns. SIGTERM then stops the daemon within its bound although the
    /// call has not returned, the restores queued behind it start nothing, and the state file keeps all three.
    @Test func aStartHangingInMdevctlIsReportedAndShutdownStartsNothingQueued() async throws {
        let hang = try MdevctlHang()
        defer { hang.remove() }
        let uuids = (0..<3).map { _ in LibvirtHost.newUUID() }
        defer {
            // Undefining calls mdevctl too.
            hang.release()
            for uuid in uuids { LibvirtHost.cleanup(uuid: uuid) }
        }
        for uuid in uuids { _ = try LibvirtHost.define(uuid: uuid) }
        let stateDir = try TemporaryDirectory()
        defer { stateDir.remove() }
        try StateStore(directory: stateDir.path).save(PersistedState(bootID: "previous-\(UUID().uuidString.lowercased())", active: uuids.map {
            PersistedState.Device(uuid: $0, parent: LibvirtHost.pciParent.name, mdevType: "nvidia-63", attrs: [], persistent: true)
        }))

        hang.hold()
        let daemon = try TestDaemon(config: """
            ownership:
              uuids: [\(uuids.joined(separator: ", "))]
            policies:
              restore:
                max_concurrent: 1
                wait_for_type: false  # This host's PCI parent offers no mdev types: attempt anyway (libvirt refuses).
                retry_initial: 50ms
                deadline: 5m
            """, stateDir: stateDir.path, extra: ["--libvirt.stuck-after", "2"])
        defer { daemon.stop() }

        #expect(await eventually(timeout: .seconds(30)) { hang.calls.contains { $0.hasPrefix("start") } },
                "no restore reached mdevctl: \(daemon.stderrTail)")
        let held = try #require(hang.calls.first { $0.hasPrefix("start") })
        let hung = ContinuousClock.now
        let stuck = "libvirt call not returning: start node device mdev_"
        var health = RawHTTP.Response(status: nil, body: "")
        #expect(await eventually(timeout: .seconds(15)) {
            health = await RawHTTP.get(port: daemon.port, path: "/healthz")
            return health.body.contains(stuck)
        }, "/healthz: \(health.status.map(String.init) ?? "-") \(health.body)")
        #expect(health.status == 503)
        // A measurement for the record, not a bound: the watch looks every quarter of the bound.
        print("stuck call: /healthz said so \(ContinuousClock.now - hung) after mdevctl began to hang (--libvirt.stuck-after 2)")
        #expect((daemon.value("mdev_libvirt_call_in_flight_seconds") ?? 0) >= 2)
        #expect(daemon.stderr.contains("libvirt has not answered 'start node device mdev_"), "\(daemon.stderrTail)")

        daemon.signal(SIGTERM)
        // Within the shutdown bound (10 s graceful, then 5 s of cancellation), with some slack.
        guard await eventually(timeout: .seconds(20), { !daemon.process.isRunning }) else {
            Issue.record("the daemon did not stop while the start hung: \(daemon.stderrTail)")
            return
        }
        #expect(daemon.process.terminationStatus == 0, "\(daemon.stderrTail)")
        hang.release()
        // The held start was the only one: the restores queued behind it started nothing after SIGTERM.
        #expect(hang.calls.filter { $0.hasPrefix("start") } == [held], "\(hang.calls)")
        // Nothing lost: all three are still to be restored at the next start.
        guard case .loaded(let saved) = StateStore(directory: stateDir.path).load() else {
            Issue.record("no state file after shutdown")
            return
        }
        #expect(Set(saved.pending.map(\.uuid)) == Set(uuids), "\(saved)")
    }
}
