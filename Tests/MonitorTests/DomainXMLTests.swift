import Testing
@testable import Monitor

/// `DomainXML.parse` and `DomainInfo(record)`: which mdevs a domain's inactive XML references.
@Suite struct DomainXMLTests {
    @Test func domainWithMdevsListsThemInOrderAndSkipsThePCIHostdev() throws {
        let parsed = try DomainXML.parse(try Fixture.text("domain_with_mdev.xml"))
        #expect(parsed.name == "QEMUGuest2")
        #expect(parsed.uuid == "c7a5fdbd-edaf-9455-926a-d65c16db1809")
        #expect(parsed.mdevUUIDs == ["53764d0e-85a0-42b4-af5c-2046b460b1dc", "c2177883-f1bb-47f0-914d-32a22e3a8804"])
    }

    @Test func domainWithOnlyAPCIHostdevReferencesNothing() throws {
        let parsed = try DomainXML.parse(try Fixture.text("domain_without_mdev.xml"))
        #expect(parsed.name == "QEMUGuest2")
        #expect(parsed.uuid == "c7a5fdbd-edaf-9466-926a-d65c16db1809")
        #expect(parsed.mdevUUIDs == [])
    }

    @Test func uuidsAreLowerCasedAndUnique() throws {
        let xml = """
            <domain type='kvm'>
              <name>vm</name>
              <devices>
                <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
                  <source><address uuid='C2177883-F1BB-47F0-914D-32A22E3A8804'/></source>
                </hostdev>
                <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
                  <source><address uuid='53764d0e-85a0-42b4-af5c-2046b460b1dc'/></source>
                </hostdev>
                <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
                  <source><address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source>
                </hostdev>
              </devices>
            </domain>
            """
        let parsed = try DomainXML.parse(xml)
        #expect(parsed.uuid == "")
        #expect(parsed.mdevUUIDs == ["c2177883-f1bb-47f0-914d-32a22e3a8804", "53764d0e-85a0-42b4-af5c-2046b460b1dc"])
    }

    @Test func notWellFormedThrowsNamingTheFallback() throws {
        let error = try #require(throws: XMLParseError.self) {
            try DomainXML.parse("<domain><name>vm</name>", fallbackName: "vm")
        }
        #expect(error.object == "vm")
    }

    @Test func missingNameThrows() {
        #expect(throws: XMLParseError.self) { try DomainXML.parse("<domain type='kvm'><devices/></domain>") }
    }

    @Test func domainInfoTakesFlagsFromTheRecordAndUUIDsFromTheXML() throws {
        let record = DomainRecord(
            name: "QEMUGuest2", inactiveXML: try Fixture.text("domain_with_mdev.xml"), active: true,
            persistent: true, autostart: false)
        #expect(try DomainInfo(record) == DomainInfo(
            name: "QEMUGuest2", uuid: "c7a5fdbd-edaf-9455-926a-d65c16db1809", active: true, persistent: true,
            autostart: false,
            mdevUUIDs: ["53764d0e-85a0-42b4-af5c-2046b460b1dc", "c2177883-f1bb-47f0-914d-32a22e3a8804"]))
    }
}
