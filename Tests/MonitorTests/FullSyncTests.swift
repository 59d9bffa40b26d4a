import Testing
@testable import Monitor

/// `FullSync.read`: everything from one connection, skipping (and reporting) what cannot be parsed.
@Suite struct FullSyncTests {
    @Test func readsDevicesParentsAndDomains() throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        try fake.putDevice(xml: try Fixture.text("mdev_ccw.xml"),
                           flags: DeviceFlags(active: true, persistent: true, autostart: true))
        fake.putDomain(DomainRecord(
            name: "guest",
            inactiveXML: MonitorServiceEventTests.domainXML("guest", ["cc000052-9b13-9b13-9b13-cc23009b1326"]),
            active: true, persistent: true, autostart: false))

        let result = try fake.freshSync()
        #expect(result.problems == [])
        let state = result.state
        #expect(state.devices.keys.sorted() == [
            MdevKey(uuid: "783e6dbb-ea0e-411f-94e2-717eaad438bf", parent: "ap_matrix"),
            MdevKey(uuid: "cc000052-9b13-9b13-9b13-cc23009b1326", parent: "css_0_0_fffe"),
        ])
        let ccw = try #require(state.device(named: MonitorServiceEventTests.ccwName))
        #expect(ccw.flags == DeviceFlags(active: true, persistent: true, autostart: true))
        #expect(ccw.domains == ["guest"])
        #expect(state.parents.keys.sorted() == ["ap_matrix", "css_0_0_fffe", "pci_0000_02_10_7"])
        #expect(state.domains.keys.sorted() == ["QEMUGuest2", "guest"])
    }

    @Test func badXMLIsReportedAndSkipped() throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let bad = "mdev_200f228a_c80a_4d50_bfb7_f5a0e4e34045_0000_00_02_0"
        fake.putDevice(named: bad, xml: try Fixture.text("mdev_missing_type.xml"), listing: .mdevs)
        fake.putDomain(DomainRecord(name: "broken", inactiveXML: "<domain>", active: false, persistent: true,
                                    autostart: false))

        let result = try fake.freshSync()
        #expect(result.problems.map(\.object) == [bad, "broken"])
        #expect(result.state.device(named: bad) == nil)
        #expect(result.state.domains["broken"] == nil)
        #expect(result.state.devices.count == 1)
    }

    @Test func deviceThatVanishesBetweenListAndFetchIsSkipped() throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        fake.vanishOnNextFetch(MonitorServiceEventTests.apName)
        let result = try fake.freshSync()
        #expect(result.problems == [])
        #expect(result.state.devices.isEmpty)
        #expect(result.state.parents.count == 3)
    }

    @Test func plainDevicesAreNotListed() throws {
        let fake = FakeLibvirt()
        try fake.putDevice(xml: "<device><name>computer</name><capability type='system'/></device>")
        #expect(try fake.freshSync().state == IndexState())
    }
}
