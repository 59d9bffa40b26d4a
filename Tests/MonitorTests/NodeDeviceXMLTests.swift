import Testing
@testable import Monitor

/// `NodeDeviceXML.parse` against every node-device fixture; expected values are the README's tables.
@Suite struct NodeDeviceXMLTests {
    struct MdevCase: Sendable, CustomTestStringConvertible {
        var file: String
        var expected: MdevDefinition
        var testDescription: String { file }
    }

    static let mdevCases: [MdevCase] = [
        MdevCase(file: "mdev_attrs.xml", expected: MdevDefinition(
            name: "mdev_57550ee2_7cda_45d6_a0e3_738f90b53ff5_0000_00_02_0", uuid: "57550ee2-7cda-45d6-a0e3-738f90b53ff5",
            parent: "pci_0000_00_02_0", parentAddress: "0000:00:02.0", mdevType: "i915-GVTg_V5_8", iommuGroup: 0,
            attrs: [
                MdevAttr(name: "testattr", value: "42"),
                MdevAttr(name: "example-attribute-2", value: "attribute-value-2"),
                MdevAttr(name: "example-attribute-1", value: "attribute-value-1"),
                MdevAttr(name: "testattr", value: "43"),
            ])),
        MdevCase(file: "mdev_transient_active.xml", expected: MdevDefinition(
            name: "mdev_c60cc60c_c60c_c60c_c60c_c60cc60cc60c_0_0_0052", uuid: "c60cc60c-c60c-c60c-c60c-c60cc60cc60c",
            parent: "css_0_0_0052", parentAddress: "0.0.0052", mdevType: "vfio_ccw-io", iommuGroup: 4, attrs: [])),
        MdevCase(file: "mdev_same_uuid_parent_a.xml", expected: MdevDefinition(
            name: "mdev_18a71809_1624_4b03_b918_58d7089d1abd_0000_00_02_0", uuid: "18a71809-1624-4b03-b918-58d7089d1abd",
            parent: "pci_0000_00_02_0", parentAddress: "0000:00:02.0", mdevType: "i915-GVTg_V5_4", iommuGroup: 0,
            attrs: [])),
        MdevCase(file: "mdev_same_uuid_parent_b.xml", expected: MdevDefinition(
            name: "mdev_18a71809_1624_4b03_b918_58d7089d1abd_0000_00_03_0", uuid: "18a71809-1624-4b03-b918-58d7089d1abd",
            parent: "pci_0000_00_03_0", parentAddress: "0000:00:03.0", mdevType: "i915-GVTg_V5_4", iommuGroup: 0,
            attrs: [])),
        MdevCase(file: "mdev_ap.xml", expected: MdevDefinition(
            name: "mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix", uuid: "783e6dbb-ea0e-411f-94e2-717eaad438bf",
            parent: "ap_matrix", parentAddress: "matrix", mdevType: "vfio_ap-passthrough", iommuGroup: 0,
            attrs: IBMZHost.apAttrs)),
        MdevCase(file: "mdev_ccw.xml", expected: MdevDefinition(
            name: "mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe", uuid: "cc000052-9b13-9b13-9b13-cc23009b1326",
            parent: "css_0_0_fffe", parentAddress: "0.0.fffe", mdevType: "vfio_ccw-io", iommuGroup: 0, attrs: [])),
    ]

    @Test(arguments: mdevCases)
    func parsesMdev(_ c: MdevCase) throws {
        let parsed = try NodeDeviceXML.parse(try Fixture.text(c.file))
        #expect(parsed == .mdev(c.expected))
    }

    @Test func sameUUIDUnderTwoParentsGivesTwoKeys() throws {
        let a = try NodeDeviceXML.parse(try Fixture.text("mdev_same_uuid_parent_a.xml"))
        let b = try NodeDeviceXML.parse(try Fixture.text("mdev_same_uuid_parent_b.xml"))
        guard case .mdev(let da) = a, case .mdev(let db) = b else {
            Issue.record("expected two mdevs, got \(a) and \(b)")
            return
        }
        #expect(da.uuid == db.uuid)
        #expect(da.key != db.key)
    }

    struct ParentCase: Sendable, CustomTestStringConvertible {
        var file: String
        var expected: ParentDevice
        var testDescription: String { file }
    }

    static let parentCases: [ParentCase] = [
        ParentCase(file: "pci_parent_mdev_types.xml", expected: ParentDevice(name: "pci_0000_02_10_7", kind: "pci", types: [
            MdevTypeInfo(id: "foo1", name: "bar1", deviceAPI: "vfio-pci", availableInstances: 1),
            MdevTypeInfo(id: "foo2", name: "bar2", deviceAPI: "vfio-pci", availableInstances: 2),
        ])),
        ParentCase(file: "ap_matrix_parent.xml", expected: ParentDevice(name: "ap_matrix", kind: "ap_matrix", types: [
            MdevTypeInfo(id: "vfio_ap-passthrough", name: "VFIO AP Passthrough Device", deviceAPI: "vfio-ap",
                         availableInstances: 65536),
        ])),
        ParentCase(file: "css_parent.xml", expected: ParentDevice(name: "css_0_0_fffe", kind: "css", types: [
            MdevTypeInfo(id: "vfio_ccw-io", name: "I/O subchannel (Non-QDIO)", deviceAPI: "vfio-ccw",
                         availableInstances: 1),
        ])),
    ]

    @Test(arguments: parentCases)
    func parsesParent(_ c: ParentCase) throws {
        let parsed = try NodeDeviceXML.parse(try Fixture.text(c.file))
        #expect(parsed == .parent(c.expected))
    }

    /// An IBM Z crypto card and one of its queues offer no mdev types: neither mdevs nor parents.
    @Test(arguments: zip(["ap_card07.xml", "ap_07_0038.xml"], ["ap_card07", "ap_07_0038"]))
    func apCardAndQueueAreOther(file: String, name: String) throws {
        #expect(try NodeDeviceXML.parse(try Fixture.text(file)) == .other(name: name))
    }

    @Test func lowerCasesTheUUID() throws {
        let xml = try Fixture.text("mdev_ccw.xml")
            .replacing("cc000052-9b13-9b13-9b13-cc23009b1326", with: "CC000052-9B13-9B13-9B13-CC23009B1326")
        let parsed = try NodeDeviceXML.parse(xml)
        guard case .mdev(let definition) = parsed else {
            Issue.record("expected an mdev, got \(parsed)")
            return
        }
        #expect(definition.uuid == "cc000052-9b13-9b13-9b13-cc23009b1326")
        #expect(definition.key == MdevKey(uuid: "cc000052-9b13-9b13-9b13-cc23009b1326", parent: "css_0_0_fffe"))
    }

    @Test func optionalFieldsMayBeAbsent() throws {
        let xml = """
            <device>
              <name>mdev_x</name>
              <parent>ap_matrix</parent>
              <capability type='mdev'>
                <type id='vfio_ap-passthrough'/>
                <uuid>783e6dbb-ea0e-411f-94e2-717eaad438bf</uuid>
              </capability>
            </device>
            """
        #expect(try NodeDeviceXML.parse(xml) == .mdev(MdevDefinition(
            name: "mdev_x", uuid: "783e6dbb-ea0e-411f-94e2-717eaad438bf", parent: "ap_matrix", parentAddress: nil,
            mdevType: "vfio_ap-passthrough", iommuGroup: nil, attrs: [])))
    }

    // MARK: bad input

    @Test func missingTypeNamesTheDeviceAndTheField() throws {
        let xml = try Fixture.text("mdev_missing_type.xml")
        let error = try #require(throws: XMLParseError.self) { try NodeDeviceXML.parse(xml) }
        #expect(error.object == "mdev_200f228a_c80a_4d50_bfb7_f5a0e4e34045_0000_00_02_0")
        #expect(error.description.contains("mdev_200f228a_c80a_4d50_bfb7_f5a0e4e34045_0000_00_02_0"))
        #expect(error.description.contains("type"))
    }

    @Test func notWellFormedThrowsNamingTheFallback() throws {
        let error = try #require(throws: XMLParseError.self) {
            try NodeDeviceXML.parse("<device><name>broken</name>", fallbackName: "mdev_broken")
        }
        #expect(error.object == "mdev_broken")
        #expect(error.description.contains("not well-formed"))
    }

    @Test func anotherRootElementThrows() {
        #expect(throws: XMLParseError.self) { try NodeDeviceXML.parse("<domain><name>vm</name></domain>") }
    }

    @Test func nonIntegerIOMMUGroupThrows() throws {
        let xml = try Fixture.text("mdev_ccw.xml").replacing("<iommuGroup number='0'/>", with: "<iommuGroup number='x'/>")
        let error = try #require(throws: XMLParseError.self) { try NodeDeviceXML.parse(xml) }
        #expect(error.object == "mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe")
    }

    @Test func pciDeviceWithoutMdevTypesIsOther() throws {
        // pci_parent_mdev_types.xml minus its mdev_types capability.
        let xml = """
            <device>
              <name>pci_0000_02_10_7</name>
              <parent>pci_0000_00_04_0</parent>
              <capability type='pci'>
                <domain>0</domain>
                <bus>2</bus>
                <slot>16</slot>
                <function>7</function>
                <product id='0x10ca'>82576 Virtual Function</product>
                <vendor id='0x8086'>Intel Corporation</vendor>
                <iommuGroup number='31'>
                  <address domain='0x0000' bus='0x02' slot='0x10' function='0x7'/>
                </iommuGroup>
                <numa node='0'/>
              </capability>
            </device>
            """
        #expect(try NodeDeviceXML.parse(xml) == .other(name: "pci_0000_02_10_7"))
    }
}
