import Testing
import TestSupport
@testable import Monitor

/// A vGPU host's PCI parents (issue 23): a GPU is a PCI node device from boot, and offers mdev types only
/// while its vendor driver is bound; SR-IOV VFs of one driver share one pool of instances, and libvirt
/// sends nothing for the siblings when an mdev on one of them takes an instance.
@Suite struct PCIParentTests {
    // `other` sorts before `b`: a fetch of it would come before b's change, not after the test looked.
    static let a = "pci_0000_00_10_0", b = "pci_0000_00_11_0", other = "pci_0000_00_0f_0"
    static let type = "mdev_edu-1"
    static let flags = DeviceFlags(active: true, persistent: false, autostart: false)

    /// A PCI device as libvirt 9.0 and 11.3 print it: with `driver` bound and `available` instances of
    /// `type` when given, with no mdev types at all when not.
    static func pciXML(_ name: String, driver: String? = "mdev_edu", available: Int?, physicalFunction: String? = nil) -> String {
        let slot = Int(name.split(separator: "_")[3], radix: 16)!
        let types = available.map { n in
            "<capability type='mdev_types'><type id='\(type)'><name>Single port</name><deviceAPI>vfio-pci</deviceAPI>"
                + "<availableInstances>\(n)</availableInstances></type></capability>"
        } ?? ""
        return "<device><name>\(name)</name><path>/sys/devices/pci0000:00/0000:00:\(String(slot, radix: 16)).0</path>"
            + "<parent>computer</parent>" + (driver.map { "<driver><name>\($0)</name></driver>" } ?? "")
            + "<capability type='pci'><class>0x00ff00</class><domain>0</domain><bus>0</bus><slot>\(slot)</slot>"
            + "<function>0</function><product id='0x11e8'/><vendor id='0x1234'/>"
            + (physicalFunction.map { "<capability type='phys_function'><address domain='0x0000' bus='0x\($0)' slot='0x00' function='0x0'/></capability>" } ?? "")
            + "\(types)</capability></device>"
    }

    static func mdevXML(_ uuid: String, parent: String) -> String {
        let name = "mdev_\(uuid.replacing("-", with: "_"))_0000_00_\(parent.split(separator: "_")[3])_0"
        return "<device><name>\(name)</name><parent>\(parent)</parent><capability type='mdev'><type id='\(type)'/>"
            + "<uuid>\(uuid)</uuid><iommuGroup number='1'/></capability></device>"
    }

    @Test func theParentsDriverIsRead() throws {
        let parsed = try NodeDeviceXML.parse(Self.pciXML(Self.a, available: 2))
        guard case .parent(let parent) = parsed else { Issue.record("not a parent: \(parsed)"); return }
        #expect(parent.driver == "mdev_edu" && parent.kind == "pci" && parent.types.map(\.availableInstances) == [2])
        guard case .parent(let unbound) = try NodeDeviceXML.parse(Self.pciXML(Self.a, driver: nil, available: 2)) else { return }
        #expect(unbound.driver == nil)
        #expect(parent.pool == "driver mdev_edu" && unbound.pool == nil && parent.physicalFunction == nil)
        guard case .parent(let vf) = try NodeDeviceXML.parse(Self.pciXML(Self.a, driver: "nvidia", available: 1, physicalFunction: "3b")) else { return }
        #expect(vf.physicalFunction == "0000:3b:00.0" && vf.pool == "pf 0000:3b:00.0")
        // Not PCI: no pool (CSS subchannels of one driver share nothing).
        #expect(ParentDevice(name: "css_0_0_fffe", kind: "css", types: [], driver: "vfio_ccw").pool == nil)
    }

    /// SR-IOV: the VFs of one physical function share its pool; another GPU's VFs, same driver, do not.
    @Test func siblingsAreTheVirtualFunctionsOfOnePhysicalFunction() {
        let vf = { (name: String, pf: String) in ParentDevice(name: name, kind: "pci", types: [], driver: "nvidia", physicalFunction: pf) }
        let state = IndexState(devices: [], parents: [vf("pci_0000_3b_00_4", "0000:3b:00.0"), vf("pci_0000_3b_00_5", "0000:3b:00.0"),
                                                      vf("pci_0000_af_00_4", "0000:af:00.0")], domains: [])
        #expect(state.parents(sharingPoolWith: "pci_0000_3b_00_4") == ["pci_0000_3b_00_5"])
        #expect(state.parents(sharingPoolWith: "pci_0000_af_00_4") == [])
    }

    /// The vendor driver registers its types: libvirt's UPDATE for the PCI device makes it a parent; the
    /// driver unbinding takes them away again: the next UPDATE makes it no parent, not a stale one.
    @Test func typesAppearingAndDisappearingFollowTheUpdate() async throws {
        let fake = FakeLibvirt()
        try fake.putDevice(xml: Self.pciXML(Self.a, driver: nil, available: nil), flags: Self.flags)
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            #expect(h.snapshot.state.parents[Self.a] == nil)

            try fake.putDevice(xml: Self.pciXML(Self.a, available: 4), flags: Self.flags)
            let added = try #require(NodeDeviceXML.parse(Self.pciXML(Self.a, available: 4)).parentDevice)
            #expect(await h.changes(from: .nodeDevice(name: Self.a, kind: .updated)) == [.parentAdded(added)])

            try fake.putDevice(xml: Self.pciXML(Self.a, driver: nil, available: nil), flags: Self.flags)
            #expect(await h.changes(from: .nodeDevice(name: Self.a, kind: .updated)) == [.parentRemoved(added)])
            #expect(h.snapshot.state.parents[Self.a] == nil)
        }
    }

    /// An mdev created on one parent re-reads the parents of the same driver (their shared pool moved),
    /// not those of another driver.
    @Test func aCreateOnOneParentRefreshesItsSiblings() async throws {
        let fake = FakeLibvirt()
        try fake.putDevice(xml: Self.pciXML(Self.a, available: 4), flags: Self.flags)
        try fake.putDevice(xml: Self.pciXML(Self.b, available: 4), flags: Self.flags)
        try fake.putDevice(xml: Self.pciXML(Self.other, driver: "nvidia", available: 4), flags: Self.flags)
        let uuid = "e2e0ed00-0000-4000-8000-000000000001"
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let mark = h.recorder.count
            fake.resetFetchLog()
            try fake.putDevice(xml: Self.mdevXML(uuid, parent: Self.a), flags: Self.flags)
            try fake.putDevice(xml: Self.pciXML(Self.a, available: 3), flags: Self.flags)
            try fake.putDevice(xml: Self.pciXML(Self.b, available: 3), flags: Self.flags)
            try fake.putDevice(xml: Self.pciXML(Self.other, driver: "nvidia", available: 3), flags: Self.flags)
            #expect(fake.emit(.nodeDevice(name: Self.mdevXML(uuid, parent: Self.a).nodeName, kind: .created)))

            let changes = await h.recorder.changes(after: mark) { change in
                if case .parentChanged(_, let new) = change { new.name == Self.b } else { false }
            }
            let seen = try #require(changes, "the sibling was not re-read")
            #expect(seen.contains { if case .parentChanged(_, let p) = $0 { p.name == Self.a && p.types[0].availableInstances == 3 } else { false } })
            #expect(h.snapshot.state.parents[Self.b]?.types[0].availableInstances == 3)
            // Another driver's parent is not part of the pool.
            #expect(!fake.nodeDeviceFetches.contains(Self.other))
            #expect(h.snapshot.state.parents[Self.other]?.types[0].availableInstances == 4)
            // A re-read mdevmon asked for is not an event libvirt sent.
            #expect(h.snapshot.status.events[EventCounterKey(source: "nodedev", event: "updated")] == nil)
        }
    }
}

private extension ParsedNodeDevice {
    var parentDevice: ParentDevice? { if case .parent(let p) = self { p } else { nil } }
}

private extension String {
    /// The `<name>` of a node-device XML.
    var nodeName: String { String(split(separator: "<name>")[1].split(separator: "<")[0]) }
}
