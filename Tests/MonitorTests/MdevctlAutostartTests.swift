import Foundation
import Testing
@testable import Monitor

/// The read-only fallback for autostart: mdevctl's definition file decides.
@Suite struct MdevctlAutostartTests {
    static let uuid = "57550ee2-7cda-45d6-a0e3-738f90b53ff5"
    static let xml = """
        <device><name>mdev_x</name><parent>pci_0000_00_02_0</parent>
        <capability type='mdev'><type id='nvidia-63'/><uuid>\(uuid)</uuid>
        <parent_addr>0000:00:02.0</parent_addr></capability></device>
        """

    func root(start: String?) throws -> String {
        let root = NSTemporaryDirectory() + "mdevctl-\(UUID().uuidString)"
        let dir = root + "/0000:00:02.0"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let start {
            try Data(#"{"mdev_type": "nvidia-63", "start": "\#(start)", "attrs": []}"#.utf8)
                .write(to: URL(fileURLWithPath: "\(dir)/\(Self.uuid)"))
        }
        return root
    }

    @Test func autoMeansAutostart() throws {
        let r = try root(start: "auto")
        defer { try? FileManager.default.removeItem(atPath: r) }
        #expect(MdevctlAutostart.read(deviceXML: Self.xml, root: r))
    }

    @Test func manualOrMissingMeansNoAutostart() throws {
        let manual = try root(start: "manual")
        let missing = try root(start: nil)
        defer {
            try? FileManager.default.removeItem(atPath: manual)
            try? FileManager.default.removeItem(atPath: missing)
        }
        #expect(!MdevctlAutostart.read(deviceXML: Self.xml, root: manual))
        #expect(!MdevctlAutostart.read(deviceXML: Self.xml, root: missing))
        #expect(!MdevctlAutostart.read(deviceXML: "<device><name>pci</name></device>", root: manual))
    }
}
