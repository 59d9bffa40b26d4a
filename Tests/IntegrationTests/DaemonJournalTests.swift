import Foundation
import Monitor
import TestSupport
import Testing

/// The daemon's own logging, end to end: `mdevmon run` → libsystemd → a real journald → `journalctl`,
/// and the fallback to stderr when there is no journal.
@Suite(.enabled(if: LibvirtHost.enabled && Journald.shouldRun, "needs libvirtd and journald (CI=true makes this mandatory)"))
struct DaemonJournalTests {
    /// Entries of this daemon process with this MESSAGE_ID (and more matches), waited for.
    static func entries(_ event: MessageID, pid: Int32, _ more: [String] = [], timeout: Duration = .seconds(20))
        async throws -> [[String: Any]]
    {
        var found: [[String: Any]] = []
        _ = await eventually(timeout: timeout) {
            found = (try? Journald.entries(matching: ["MESSAGE_ID=\(event.id)", "_PID=\(pid)"] + more)) ?? []
            return !found.isEmpty
        }
        return found
    }

    @Test func definedAndUndefinedDevicesAreJournaledWithTheirFields() async throws {
        try Journald.ensureRunning()
        let daemon = try TestDaemon(extra: ["--log.target", "journal", "--log.level", "info"])
        defer { daemon.stop() }
        let synced = try await Self.entries(.initialSyncCompleted, pid: daemon.pid)
        try #require(!synced.isEmpty, "no initial-sync entry from the daemon; stderr:\n\(daemon.stderrTail)")

        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        _ = try LibvirtHost.define(uuid: uuid)
        let defined = try await Self.entries(.deviceDefined, pid: daemon.pid, ["MDEV_UUID=\(uuid)"])
        let entry = try #require(defined.first, "no DEFINED entry for \(uuid); stderr:\n\(daemon.stderrTail)")
        #expect(defined.count == 1, "one define, one entry")
        #expect(entry["PRIORITY"] as? String == "6", "info")
        #expect(entry["SYSLOG_IDENTIFIER"] as? String == "mdevmon")
        #expect(entry["MDEV_PARENT"] as? String == LibvirtHost.pciParent.name)
        #expect(entry["MDEV_TYPE"] as? String == "nvidia-63")
        #expect(entry["LIBVIRT_URI"] as? String == LibvirtHost.uri)
        #expect((entry["MESSAGE"] as? String)?.contains(uuid) == true)
        #expect(entry["CODE_FILE"] != nil && entry["CODE_LINE"] != nil && entry["CODE_FUNC"] != nil)

        #expect(LibvirtHost.virsh("nodedev-undefine", LibvirtHost.mdevName(uuid: uuid)).status == 0)
        let undefined = try await Self.entries(.deviceUndefined, pid: daemon.pid, ["MDEV_UUID=\(uuid)"])
        #expect(undefined.count == 1, "one undefine, one entry; stderr:\n\(daemon.stderrTail)")
        #expect(undefined.first?["PRIORITY"] as? String == "6")
        // With the journal as target nothing is written to stderr (no duplicates, no send errors).
        #expect(daemon.stderr.isEmpty, "stderr:\n\(daemon.stderrTail)")
    }

    /// `--log.target auto` on a host without journald's socket (hidden by an empty tmpfs in a private
    /// mount namespace): every line goes to stderr, none is lost, none is a logging error.
    @Test func withoutAJournalSocketAutoLogsEverythingToStderr() async throws {
        let daemon = try TestDaemon(
            extra: ["--log.target", "auto", "--log.format", "json", "--log.level", "info"],
            wrapper: ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                      "mount -t tmpfs mdevmon-test /run/systemd/journal && exec \"$@\"", "sh"])
        defer { daemon.stop() }
        try #require(await daemon.waitUntilSynced(), "daemon never synced; stderr:\n\(daemon.stderrTail)")

        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        _ = try LibvirtHost.define(uuid: uuid)
        #expect(LibvirtHost.virsh("nodedev-undefine", LibvirtHost.mdevName(uuid: uuid)).status == 0)

        func lines() -> [[String: Any]] {
            daemon.stderr.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
        }
        func logged(_ event: MessageID) -> [[String: Any]] {
            lines().filter { $0[MessageID.metadataKey] as? String == event.id && $0[LogKey.mdevUUID] as? String == uuid }
        }
        let both = await eventually(timeout: .seconds(20)) {
            !logged(.deviceDefined).isEmpty && !logged(.deviceUndefined).isEmpty
        }
        #expect(both, "stderr:\n\(daemon.stderrTail)")
        #expect(logged(.deviceDefined).count == 1 && logged(.deviceUndefined).count == 1)
        #expect(logged(.deviceDefined).first?["level"] as? String == "info")

        // Every line is a whole JSON object (no interleaving), and none reports a logging failure.
        let raw = daemon.stderr.split(separator: "\n")
        #expect(raw.count == lines().count, "unparseable stderr lines:\n\(daemon.stderrTail)")
        // A failing host check is an error by design (this host's stock udev rule is broken); anything
        // else at error would be a logging or event-handling failure.
        #expect(!lines().contains {
            ["error", "critical"].contains($0["level"] as? String ?? "")
                && $0[MessageID.metadataKey] as? String != MessageID.hostCheckFailed.id
        }, "errors on stderr:\n\(daemon.stderrTail)")
        // The journal itself saw nothing of this device.
        #expect(try Journald.entries(matching: ["MDEV_UUID=\(uuid)"]).isEmpty)
    }
}
