import Foundation
import Testing
import Synchronization
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

/// The full sync at one RPC per device: state from the listing, persistence and autostart from
/// mdevctl's definitions on a local connection, per-device RPCs only where the files cannot answer.
@Suite struct FullSyncOneRPCPerDeviceTests {
    static func mdev(_ uuid: String, parentAddr: String? = "0000:00:02.0") -> String {
        let name = "mdev_\(uuid.replacing("-", with: "_"))_0000_00_02_0"
        return "<device><name>\(name)</name><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='nvidia-63'/>"
            + "<uuid>\(uuid)</uuid>\(parentAddr.map { "<parent_addr>\($0)</parent_addr>" } ?? "")</capability></device>"
    }

    @Test func localFlagsComeFromMdevctlAndTheListingWithoutFlagRPCs() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mdevctl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/0000:00:02.0", withIntermediateDirectories: true)
        let activeAuto = "aaaaaaaa-0000-4000-8000-000000000001", activeTransient = "aaaaaaaa-0000-4000-8000-000000000002"
        let inactiveManual = "aaaaaaaa-0000-4000-8000-000000000003", inactiveAuto = "aaaaaaaa-0000-4000-8000-000000000004"
        for (uuid, start) in [(activeAuto, "auto"), (inactiveManual, "manual"), (inactiveAuto, "auto")] {
            let json = #"{"mdev_type": "nvidia-63", "start": "\#(start)", "attrs": []}"#
            #expect(FileManager.default.createFile(atPath: "\(root)/0000:00:02.0/\(uuid)", contents: Data(json.utf8)))
        }
        let fake = FakeLibvirt()
        fake.local.store(true, ordering: .relaxed)
        // The fake's own flags are what libvirt would answer; the sync must reach the same without asking.
        let truth: [String: DeviceFlags] = [
            activeAuto: DeviceFlags(active: true, persistent: true, autostart: true),
            activeTransient: DeviceFlags(active: true, persistent: false, autostart: false),
            inactiveManual: DeviceFlags(active: false, persistent: true, autostart: false),
            inactiveAuto: DeviceFlags(active: false, persistent: true, autostart: true),
        ]
        for (uuid, flags) in truth { try fake.putDevice(xml: Self.mdev(uuid), flags: flags) }

        let result = try fake.countedSync(mdevctlRoot: root)
        for (uuid, flags) in truth {
            #expect(result.state.devices(uuid: uuid).first?.flags == flags, "\(uuid)")
        }
        #expect(fake.nodeDeviceFetches.isEmpty, "per-device RPCs: \(fake.nodeDeviceFetches)")
        #expect(fake.listedWithXML.count == 4)
    }

    @Test func whereTheFilesCannotAnswerLibvirtIsAsked() throws {
        let fake = FakeLibvirt()
        let remote = "bbbbbbbb-0000-4000-8000-000000000001", noAddress = "bbbbbbbb-0000-4000-8000-000000000002"
        try fake.putDevice(xml: Self.mdev(remote), flags: DeviceFlags(active: true, persistent: true, autostart: true))
        // Remote: mdevctl's files here say nothing about that host.
        var result = try fake.countedSync(mdevctlRoot: "/nonexistent")
        #expect(result.state.devices(uuid: remote).first?.flags == DeviceFlags(active: true, persistent: true, autostart: true))
        #expect(fake.nodeDeviceFetches.count == 1)

        // Local, but the XML has no parent address to find the definition by.
        fake.local.store(true, ordering: .relaxed)
        fake.resetFetchLog()
        try fake.putDevice(xml: Self.mdev(noAddress, parentAddr: nil), flags: DeviceFlags(active: true, persistent: true, autostart: false))
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mdevctl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        result = try fake.countedSync(mdevctlRoot: root)
        #expect(result.state.devices(uuid: noAddress).first?.flags == DeviceFlags(active: true, persistent: true, autostart: false))
        #expect(fake.nodeDeviceFetches.contains { $0.contains("bbbbbbbb_0000_4000_8000_000000000002") })
    }

    @Test func localAndRemoteURIs() throws {
        #expect(LibvirtURI.isLocal("qemu:///system"))
        #expect(LibvirtURI.isLocal("qemu:///session"))
        #expect(!LibvirtURI.isLocal("test:///default"))
        #expect(!LibvirtURI.isLocal("qemu+ssh://host/system"))
        #expect(!LibvirtURI.isLocal("qemu://host/system"))
        #expect(!LibvirtURI.isLocal("qemu+tcp:///system"))
        #expect(LibvirtURI.isLocal("qemu+unix:///system"), "a unix socket is this machine's libvirtd")
        // Remote: another host, or a network transport; a unix socket and the test driver are neither.
        for uri in ["qemu+tls://kvmz01/system", "qemu+ssh://root@kvmz01/system", "qemu://kvmz01/system",
                    "qemu+tcp://127.0.0.1:16509/system", "qemu+tcp:///system"] {
            #expect(LibvirtURI.isRemote(uri), "\(uri)")
        }
        for uri in ["qemu:///system", "qemu+unix:///system", "test:///default", "nonsense"] {
            #expect(!LibvirtURI.isRemote(uri), "\(uri)")
        }
        #expect(LocalOnlyFeature.remoteNotice(uri: "qemu:///system") == nil)
        let notice = try #require(LocalOnlyFeature.remoteNotice(uri: "qemu+tls://kvmz01/system"))
        #expect(notice.hasPrefix("libvirt at qemu+tls://kvmz01/system is remote: "))
        #expect(notice.contains("mdevctl's files are not read") && notice.contains("libvirt 9 does not")
                && notice.contains("host checks of mdevctl, udev rules, kernel modules, sysfs parents and mdevmon.service are skipped"))
    }
}

/// One object libvirt fails to give never fails the sync, but a connection lost in the middle of it still
/// does: the errors that follow are the connection's, not the objects'.
@Suite struct FullSyncConnectionLossTests {
    /// The fake's connection, which dies (no longer alive, every call failing) at its first domain fetch.
    final class DyingAtFirstDomain: LibvirtConnection {
        let inner: any LibvirtConnection
        private let dead = Mutex(false)
        init(_ inner: any LibvirtConnection) { self.inner = inner }

        var uri: String { inner.uri }
        var events: EventQueue { inner.events }
        var isAlive: Bool { !dead.withLock { $0 } && inner.isAlive }
        var version: LibvirtVersion { inner.version }
        var host: WatchedHost { inner.host }
        var isLocal: Bool { inner.isLocal }
        var configWatchProblem: String? { inner.configWatchProblem }
        func listNodeDevices(_ which: NodeDeviceListing) throws -> [String] { try inner.listNodeDevices(which) }
        func listNodeDeviceXMLs(_ which: NodeDeviceListing, active: Bool?, persistent: Bool?,
                                fetched: (_ name: String, _ error: LibvirtError?) -> Void) throws -> [(name: String, xml: String)] {
            try inner.listNodeDeviceXMLs(which, active: active, persistent: persistent, fetched: fetched)
        }
        func nodeDevice(named name: String) throws -> NodeDeviceRecord? { try inner.nodeDevice(named: name) }
        func listDomains() throws -> [String] { try inner.listDomains() }
        func domain(named name: String) throws -> DomainRecord? {
            dead.withLock { $0 = true }
            throw LibvirtError(code: LibvirtError.Code.rpc, domain: 7, message: "Cannot recv data: Connection reset by peer",
                               operation: "get domain", object: name)
        }
        func startNodeDevice(named name: String) throws { try inner.startNodeDevice(named: name) }
        func createNodeDevice(xml: String) throws -> String { try inner.createNodeDevice(xml: xml) }
        func withLease<T>(_ body: () throws -> T) throws -> T { try inner.withLease(body) }
        func close() { inner.close() }
    }

    @Test func aConnectionLostMidSyncFailsIt() throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let connection = DyingAtFirstDomain(try fake.connect(uri: "test:///sync", readOnly: true))
        defer { connection.close() }
        let error = #expect(throws: LibvirtError.self) { try FullSync.read(from: connection) }
        #expect(error?.message == "Cannot recv data: Connection reset by peer")
    }
}
