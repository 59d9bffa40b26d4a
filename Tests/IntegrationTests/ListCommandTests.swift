import Foundation
import Monitor
import Testing

@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct ListCommandTests {
    @Test func listShowsDefinedDeviceInTableAndJSON() throws {
        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        _ = try LibvirtHost.define(uuid: uuid, type: "nvidia-64")
        let table = LibvirtHost.run(mdevmonBinary, ["list", "--parents"])
        #expect(table.status == 0, "mdevmon list failed: \(table.err)")
        let row = table.out.split(separator: "\n").first { $0.hasPrefix(uuid) }
        let fields = try #require(row).split(separator: " ", omittingEmptySubsequences: true)
        #expect(fields.map(String.init) == [uuid, LibvirtHost.pciParent.name, "nvidia-64", "inactive", "persistent", "no", "-"])

        let json = LibvirtHost.run(mdevmonBinary, ["list", "--json"])
        #expect(json.status == 0, "mdevmon list --json failed: \(json.err)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let listing = try decoder.decode(Listing.self, from: Data(json.out.utf8))
        let device = try #require(listing.devices.first { $0.uuid == uuid })
        #expect(device.mdevType == "nvidia-64" && device.persistent && !device.active)
    }

    @Test func helpExplainsFlags() {
        let r = LibvirtHost.run(mdevmonBinary, ["list", "--help"])
        #expect(r.status == 0)
        #expect(r.out.contains("--connect"))
        #expect(r.out.contains("--json"))
        #expect(r.out.contains("--parents"))
    }
}
