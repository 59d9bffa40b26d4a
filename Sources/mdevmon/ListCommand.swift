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
                Below the mdevs, the restores the daemon has pending (read from its state file in --state.dir, \
                never changed) and what each waits for: parent, type (its parent does not offer the type yet: a \
                vendor driver not up), instance (none free), or - (it can act). Exits 1 with a one-line error \
                when libvirt cannot be reached.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Flag(help: "Print the index as JSON (the same document /api/v1/devices serves).")
        var json = false

        @Flag(help: "Also print each parent's mdev types and available instances.")
        var parents = false

        @Flag(help: "List the domains that reference or use mdevs, with whether each could start now and its blockers.")
        var domains = false

        @Option(name: .customLong("state.dir"), help: ArgumentHelp("mdevmon's state directory, read for its pending restores.", valueName: "dir"))
        var stateDir: String = "/var/lib/mdevmon"

        func run() async throws {
            let uri = connection.connect
            let snapshot: IndexSnapshot
            do {
                let conn = try LibvirtConnectorImpl.connectOnce(uri: uri, readOnly: true)
                defer { conn.close() }
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
                var text = listing.table(parents: parents)
                if let pending = StateStore(directory: stateDir).peek()?.pending, !pending.isEmpty {
                    text += "\n" + RestoreWaiting.table(pending: pending, state: snapshot.state)
                }
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}
