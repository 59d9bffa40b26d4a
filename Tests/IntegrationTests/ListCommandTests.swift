import Foundation
import Monitor
import Policy
import TestSupport
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
        #expect(fields.map(String.init) == [uuid, LibvirtHost.pciParent.name, "nvidia-64", "inactive", "persistent", "no", "-", "-", "in_sync"])

        let json = LibvirtHost.run(mdevmonBinary, ["list", "--json"])
        #expect(json.status == 0, "mdevmon list --json failed: \(json.err)")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let listing = try decoder.decode(Listing.self, from: Data(json.out.utf8))
        let device = try #require(listing.devices.first { $0.uuid == uuid })
        #expect(device.mdevType == "nvidia-64" && device.persistent && !device.active)
        #expect(device.drift == "in_sync")
    }

    @Test func listDomainsShowsWhyADomainCouldNotStart() throws {
        let uuid = LibvirtHost.newUUID()
        let domain = "mdevmon-list-test-\(UUID().uuidString.prefix(8).lowercased())"
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.cleanup(uuid: uuid)
        }
        _ = try LibvirtHost.define(uuid: uuid, type: "nvidia-64")
        try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [uuid])
        let table = LibvirtHost.run(mdevmonBinary, ["list", "--domains"])
        #expect(table.status == 0, "mdevmon list --domains failed: \(table.err)")
        let lines = table.out.split(separator: "\n")
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                == ["DOMAIN", "STATE", "PERSISTENCE", "AUTOSTART", "MDEVS", "IN_USE", "STARTABLE", "BLOCKERS"])
        let row = try #require(lines.first { $0.hasPrefix(domain + " ") })
        // This host's PCI parent offers no mdev types: its driver has not registered the mdev's type.
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                == [domain, "inactive", "persistent", "no", uuid, "-", "no", "\(uuid):type_not_offered"])

        let json = LibvirtHost.run(mdevmonBinary, ["list", "--domains", "--json"])
        #expect(json.status == 0, "mdevmon list --domains --json failed: \(json.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let entry = try #require((object["domains"] as? [[String: Any]])?.first { $0["name"] as? String == domain })
        #expect(entry["startable"] as? Bool == false)
        #expect(entry["mdevs"] as? [String] == [uuid])
        let blockers = try #require(entry["blockers"] as? [[String: Any]])
        #expect(blockers.map { $0["reason"] as? String } == ["type_not_offered"])
    }

    /// A state file from another boot is named, not read as this boot's pending restores; one that cannot be
    /// read is said on stderr, and the listing still succeeds. Neither file is changed.
    @Test func listNamesAStateFileFromAnotherBootAndOneItCannotRead() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let uuid = LibvirtHost.newUUID()
        let saved = PersistedState(bootID: "previous-\(UUID().uuidString.lowercased())", active: [], pending: [
            PersistedState.Device(uuid: uuid, parent: LibvirtHost.pciParent.name, mdevType: "nvidia-63", attrs: [], persistent: true),
        ])
        try StateStore(directory: dir.path).save(saved)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/state.json"))
        let old = LibvirtHost.run(mdevmonBinary, ["list", "--state.dir", dir.path])
        #expect(old.status == 0, "\(old.err)")
        #expect(old.out.contains("\(dir.path)/state.json was written on boot id \(saved.bootID)"), "\(old.out)")
        #expect(old.out.contains("mdevmon has not run there since (it recorded 1 mdev)"), "\(old.out)")
        #expect(!old.out.contains("RESTORE_PENDING"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/state.json")) == before)

        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir.path + "/state.json"))
        let bad = LibvirtHost.run(mdevmonBinary, ["list", "--state.dir", dir.path])
        #expect(bad.status == 0, "\(bad.err)")
        #expect(bad.err.contains("pending restores not shown: cannot read \(dir.path)/state.json"), "\(bad.err)")
        #expect(try String(contentsOfFile: dir.path + "/state.json", encoding: .utf8) == "{ not json")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["state.json"])
    }

    @Test func helpExplainsFlags() {
        let r = LibvirtHost.run(mdevmonBinary, ["list", "--help"])
        #expect(r.status == 0)
        #expect(r.out.contains("--connect"))
        #expect(r.out.contains("--json"))
        #expect(r.out.contains("--parents"))
        #expect(r.out.contains("--domains"))
        #expect(r.out.contains("--state.dir"))
    }
}
