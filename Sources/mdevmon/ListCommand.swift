import ArgumentParser
import Foundation
import Monitor
import Policy

extension Mdevmon {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every mdev libvirt knows (active and defined) once, then exit.",
            discussion: """
                Each mdev shows the domains whose configuration references it (DOMAINS) and the running \
                domains whose live XML holds it now (IN_USE_BY, hot-plugged ones included). --domains lists \
                the domains instead: their mdevs, whether each defined domain could start now and, if not, \
                why (per mdev: missing, inactive, no_capacity, type_not_offered, parent_missing, in_use, restoring). \
                The table (not --json, not --domains) ends with the restores the daemon has pending on this boot, \
                read from its state file in --state.dir (never changed), and what the index says each waits for \
                (as with wait_for_type, the default): parent, type (its parent does not offer the type yet: a \
                vendor driver not up), instance (none free), or - (nothing in the index holds it). A state file \
                from an earlier boot is named instead. Exits 1 with a one-line error when libvirt cannot be reached.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Flag(help: "Print the index as JSON (the same document /api/v1/devices serves).")
        var json = false

        @Flag(help: "Also print each parent's mdev types and available instances.")
        var parents = false

        @Flag(help: "List the domains that reference or use mdevs, with whether each could start now and its blockers.")
        var domains = false

        @Option(name: .customLong("state.dir"), help: ArgumentHelp(
            "The daemon's state directory, read for its pending restores (default: /var/lib/mdevmon for a local URI; none for a remote or test:/// one).",
            valueName: "dir"))
        var stateDir: String?

        func run() async throws {
            let uri = connection.connect
            let snapshot: IndexSnapshot
            let boot: HostBoot?
            do {
                let conn = try LibvirtConnectorImpl.connectOnce(uri: uri, readOnly: true)
                defer { conn.close() }
                boot = conn.host.boot
                let result = try FullSync.read(from: conn)
                for problem in result.problems {
                    FileHandle.standardError.write(Data("mdevmon: warning: skipped \(problem)\n".utf8))
                }
                var status = MonitorStatus(uri: uri)
                status.connected = true
                status.synced = true
                snapshot = IndexSnapshot(state: result.state, status: status)
            } catch {
                FileHandle.standardError.write(Data("mdevmon: error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            if domains {
                let listing = DomainListing(snapshot.state)
                FileHandle.standardOutput.write(json ? listing.json() : Data(listing.table().utf8))
                return
            }
            let listing = Listing(snapshot)
            if json {
                FileHandle.standardOutput.write(listing.json())
            } else {
                let restores = (stateDir ?? (LibvirtURI.isLocal(uri) ? StateStore.defaultDirectory : nil)).map {
                    pendingRestores(StateStore(directory: $0), boot: boot, state: snapshot.state)
                } ?? ""
                FileHandle.standardOutput.write(Data((listing.table(parents: parents) + restores).utf8))
            }
        }

        /// The daemon's pending restores on this boot, with what each waits for; a line instead when its
        /// state file is from an earlier boot (or another host); nothing when there is none or none pending.
        private func pendingRestores(_ store: StateStore, boot: HostBoot?, state: IndexState) -> String {
            let saved: PersistedState
            do {
                guard let read = try store.peek() else { return "" }
                saved = read
            } catch {
                FileHandle.standardError.write(Data("mdevmon: note: pending restores not shown: cannot read \(store.path): \(error)\n".utf8))
                return ""
            }
            // As the daemon judges a reboot: not knowing either boot, or boots that cannot be compared, is none.
            if let written = HostBoot(persisted: saved.bootID), let boot, boot.isLater(than: written) == true {
                let recorded = Set((saved.active + saved.pending).map(\.key)).count
                return "\n\(store.path) was written on \(written), and libvirt's host is on \(boot): mdevmon has not run there since (it recorded \(recorded) mdev\(recorded == 1 ? "" : "s"))\n"
            }
            return saved.pending.isEmpty ? "" : "\n" + RestoreWaiting.table(pending: saved.pending, state: state)
        }
    }
}
