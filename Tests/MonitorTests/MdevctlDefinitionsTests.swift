import Foundation
import Testing
@testable import Monitor

/// mdevctl's definition files: autostart for a read-only monitor, and the definition's type and attrs.
@Suite struct MdevctlDefinitionsTests {
    static let uuid = "57550ee2-7cda-45d6-a0e3-738f90b53ff5"
    static let xml = """
        <device><name>mdev_x</name><parent>pci_0000_00_02_0</parent>
        <capability type='mdev'><type id='nvidia-63'/><uuid>\(uuid)</uuid>
        <parent_addr>0000:00:02.0</parent_addr></capability></device>
        """

    func root(start: String?) throws -> String {
        try root(file: start.map { #"{"mdev_type": "nvidia-63", "start": "\#($0)", "attrs": []}"# })
    }

    func root(file: String?) throws -> String {
        let root = NSTemporaryDirectory() + "mdevctl-\(UUID().uuidString)"
        let dir = root + "/0000:00:02.0"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let file {
            try Data(file.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(Self.uuid)"))
        }
        return root
    }

    static var definition: MdevDefinition {
        guard case .mdev(let d) = try! NodeDeviceXML.parse(xml) else { preconditionFailure("not an mdev") }
        return d
    }

    @Test func definitionGivesTypeAndAttrsInOrder() throws {
        let r = try root(file: #"{"mdev_type": "nvidia-64", "start": "manual", "attrs": [{"b": "2"}, {"a": "1"}]}"#)
        defer { try? FileManager.default.removeItem(atPath: r) }
        let config = MdevConfig(mdevType: "nvidia-64", attrs: [MdevAttr(name: "b", value: "2"), MdevAttr(name: "a", value: "1")])
        #expect(MdevctlDefinitions.definition(of: Self.definition, root: r) == .defined(autostart: false, config: config))
    }

    @Test func unreadableAttrsLeaveTheConfigUnknownNotEmpty() throws {
        for attrs in [#"[{"a": "1", "b": "2"}]"#, #"{"a": "1"}"#, #"[{"a": 1}]"#] {
            let r = try root(file: #"{"mdev_type": "nvidia-64", "start": "auto", "attrs": \#(attrs)}"#)
            defer { try? FileManager.default.removeItem(atPath: r) }
            #expect(MdevctlDefinitions.definition(of: Self.definition, root: r) == .defined(autostart: true, config: nil), "\(attrs)")
        }
        let none = try root(file: nil)
        defer { try? FileManager.default.removeItem(atPath: none) }
        #expect(MdevctlDefinitions.definition(of: Self.definition, root: none) == MdevctlDefinitions.Definition.none)
    }

    @Test func autoMeansAutostart() throws {
        let r = try root(start: "auto")
        defer { try? FileManager.default.removeItem(atPath: r) }
        #expect(MdevctlDefinitions.read(deviceXML: Self.xml, root: r))
    }

    @Test func manualOrMissingMeansNoAutostart() throws {
        let manual = try root(start: "manual")
        let missing = try root(start: nil)
        defer {
            try? FileManager.default.removeItem(atPath: manual)
            try? FileManager.default.removeItem(atPath: missing)
        }
        #expect(!MdevctlDefinitions.read(deviceXML: Self.xml, root: manual))
        #expect(!MdevctlDefinitions.read(deviceXML: Self.xml, root: missing))
        #expect(!MdevctlDefinitions.read(deviceXML: "<device><name>pci</name></device>", root: manual))
    }
}
