import ArgumentParser
import Foundation
import Monitor

extension Mdevmon {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every mdev libvirt knows (active and defined) once, then exit.",
            discussion: "Exits 1 with a one-line error when libvirt cannot be reached.")

        @OptionGroup var connection: ConnectionOptions

        @Flag(help: "Print the index as JSON (the same document /api/v1/devices serves).")
        var json = false

        @Flag(help: "Also print each parent's mdev types and available instances.")
        var parents = false

        func run() async throws {
            let uri = connection.connect
            let snapshot: IndexSnapshot
            do {
                let conn = try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
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
            let listing = Listing(snapshot)
            if json {
                FileHandle.standardOutput.write(listing.json())
            } else {
                FileHandle.standardOutput.write(Data(listing.table(parents: parents).utf8))
            }
        }
    }
}
