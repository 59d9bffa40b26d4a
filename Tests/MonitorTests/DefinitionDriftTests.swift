import Foundation
import Testing
@testable import Monitor

/// Definition drift (issue 17): libvirt ≥ 10.1 keeps an mdev's definition apart from its live state, so an
/// active device can run one type while its next start applies another; older libvirt cannot tell.
@Suite struct DefinitionDriftTests {
    static let uuid = "dddddddd-0000-4000-8000-000000000001"
    static let name = "mdev_dddddddd_0000_4000_8000_000000000001_0000_00_02_0"
    static let libvirt11 = LibvirtVersion(major: 11, minor: 3, micro: 0)

    static func xml(_ uuid: String = uuid, type: String, attrs: [(String, String)] = []) -> String {
        let name = "mdev_\(uuid.replacing("-", with: "_"))_0000_00_02_0"
        let attrXML = attrs.map { "<attr name='\($0.0)' value='\($0.1)'/>" }.joined()
        return "<device><name>\(name)</name><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='\(type)'/>"
            + "<uuid>\(uuid)</uuid><parent_addr>0000:00:02.0</parent_addr>\(attrXML)</capability></device>"
    }

    static let activePersistent = DeviceFlags(active: true, persistent: true, autostart: false)

    /// A temporary mdevctl configuration root holding `definition` as the file of `uuid` under 0000:00:02.0;
    /// the caller removes it.
    static func mdevctlRoot(definition: String) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mdevctl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/0000:00:02.0", withIntermediateDirectories: true)
        try Data(definition.utf8).write(to: URL(fileURLWithPath: "\(root)/0000:00:02.0/\(uuid)"))
        return root
    }

    // MARK: the comparison

    @Test func compareSaysOnlyWhatIsCertain() {
        let a1 = MdevAttr(name: "a", value: "1"), a2 = MdevAttr(name: "a", value: "2"), b = MdevAttr(name: "b", value: "0x5")
        func config(_ type: String, _ attrs: [MdevAttr] = []) -> MdevConfig { MdevConfig(mdevType: type, attrs: attrs) }
        #expect(DefinitionDrift.compare(live: config("t1"), defined: nil) == .unknown)
        #expect(DefinitionDrift.compare(live: config("t1"), defined: config("t1")) == .inSync)
        #expect(DefinitionDrift.compare(live: config("t1", [a1, b]), defined: config("t1", [a1, b])) == .inSync)
        // A type difference is certain whatever the attrs.
        #expect(DefinitionDrift.compare(live: config("t1"), defined: config("t2")) == .drifted)
        #expect(DefinitionDrift.compare(live: config("t1", [a1]), defined: config("t2", [a1])) == .drifted)
        // Live attrs come from a vendor callout, in its own spelling and order: a difference proves nothing,
        // and neither do attrs it does not report at all.
        #expect(DefinitionDrift.compare(live: config("t1", [a1]), defined: config("t1", [a2])) == .unknown)
        #expect(DefinitionDrift.compare(live: config("t1", [b, a1]), defined: config("t1", [a1, b])) == .unknown)
        #expect(DefinitionDrift.compare(live: config("t1", [a1]), defined: config("t1")) == .unknown)
        #expect(DefinitionDrift.compare(live: config("t1"), defined: config("t1", [a1])) == .unknown)
    }

    @Test func onlyPersistentDevicesHaveADriftAndInactiveOnesAreInSync() throws {
        guard case .mdev(let def) = try NodeDeviceXML.parse(Self.xml(type: "mtty-1")) else { throw XMLParseError(object: "x", problem: "not an mdev") }
        let other = MdevConfig(mdevType: "mtty-2", attrs: [])
        #expect(MdevDevice(definition: def, flags: DeviceFlags(active: true, persistent: false, autostart: false)).drift == nil)
        #expect(MdevDevice(definition: def, flags: DeviceFlags(active: false, persistent: true, autostart: false), definedConfig: other).drift == .inSync)
        #expect(MdevDevice(definition: def, flags: Self.activePersistent).drift == .unknown)
        #expect(MdevDevice(definition: def, flags: Self.activePersistent, definedConfig: other).drift == .drifted)
    }

    // MARK: the full sync

    @Test func libvirt11ListsPersistenceApartAndReadsTheDefinition() throws {
        let fake = FakeLibvirt()
        fake.version.withLock { $0 = Self.libvirt11 }
        let transient = "dddddddd-0000-4000-8000-000000000002", inactive = "dddddddd-0000-4000-8000-000000000003"
        try fake.putDevice(xml: Self.xml(type: "mtty-1"), flags: Self.activePersistent)
        fake.updateDefinition(of: Self.name, xml: Self.xml(type: "mtty-2"))
        try fake.putDevice(xml: Self.xml(transient, type: "mtty-1"), flags: DeviceFlags(active: true, persistent: false, autostart: false))
        try fake.putDevice(xml: Self.xml(inactive, type: "mtty-1"), flags: DeviceFlags(active: false, persistent: true, autostart: true))

        // Remote: the files cannot answer, so only the active persistent device and the inactive one are
        // asked about (autostart, definition); the transient one is known from its listing alone.
        let state = try fake.countedSync(mdevctlRoot: "/nonexistent").state
        #expect(fake.nodeDeviceFetches.sorted() == [Self.name, "mdev_dddddddd_0000_4000_8000_000000000003_0000_00_02_0"])
        let device = try #require(state.devices(uuid: Self.uuid).first)
        #expect(device.definedConfig == MdevConfig(mdevType: "mtty-2", attrs: []))
        #expect(device.drift == .drifted)
        #expect(state.devices(uuid: transient).first?.flags == DeviceFlags(active: true, persistent: false, autostart: false))
        #expect(state.devices(uuid: transient).first?.drift == nil)
        #expect(state.devices(uuid: inactive).first?.flags == DeviceFlags(active: false, persistent: true, autostart: true))
        #expect(state.devices(uuid: inactive).first?.drift == .inSync)
    }

    @Test func locallyTheDefinitionComesFromMdevctlsFileWithoutAnRPC() throws {
        let root = try Self.mdevctlRoot(definition: #"{"mdev_type": "mtty-2", "start": "auto", "attrs": []}"#)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fake = FakeLibvirt()
        fake.version.withLock { $0 = Self.libvirt11 }
        fake.local.store(true, ordering: .relaxed)
        try fake.putDevice(xml: Self.xml(type: "mtty-1"), flags: DeviceFlags(active: true, persistent: true, autostart: true))
        fake.updateDefinition(of: Self.name, xml: Self.xml(type: "mtty-2"))

        let state = try fake.countedSync(mdevctlRoot: root).state
        #expect(fake.nodeDeviceFetches.isEmpty, "per-device RPCs: \(fake.nodeDeviceFetches)")
        let device = try #require(state.devices(uuid: Self.uuid).first)
        #expect(device.flags == DeviceFlags(active: true, persistent: true, autostart: true))
        #expect(device.drift == .drifted)
    }

    @Test func libvirt9CannotTellSoDriftIsUnknown() throws {
        let fake = FakeLibvirt()
        try fake.putDevice(xml: Self.xml(type: "mtty-1"), flags: Self.activePersistent)
        fake.updateDefinition(of: Self.name, xml: Self.xml(type: "mtty-2"))
        // The fake rejects the persistence filter on 9.0, as libvirt does: the sync must not use it.
        let device = try #require(try fake.countedSync(mdevctlRoot: "/nonexistent").state.devices(uuid: Self.uuid).first)
        #expect(device.definedConfig == nil)
        #expect(device.drift == .unknown)
    }

    /// The daemon's own path on Debian 12: local, mdevctl's file at hand. The file is the definition, but
    /// libvirt 9's XML shows the definition's type too, so the live type is not known: never compared.
    @Test func libvirt9LocallyIgnoresTheFileForDrift() throws {
        let root = try Self.mdevctlRoot(definition: #"{"mdev_type": "mtty-2", "start": "manual", "attrs": []}"#)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fake = FakeLibvirt()
        fake.local.store(true, ordering: .relaxed)
        try fake.putDevice(xml: Self.xml(type: "mtty-1"), flags: Self.activePersistent)
        let device = try #require(try fake.countedSync(mdevctlRoot: root).state.devices(uuid: Self.uuid).first)
        #expect(fake.nodeDeviceFetches.isEmpty)
        #expect(device.flags == Self.activePersistent)
        #expect(device.definedConfig == nil)
        #expect(device.drift == .unknown)
    }

    // MARK: events and the journal

    @Test func anUpdateEventShowsTheNewDefinitionAndARestartAppliesIt() async throws {
        let fake = FakeLibvirt()
        fake.version.withLock { $0 = Self.libvirt11 }
        try fake.putDevice(xml: Self.xml(type: "mtty-1"), flags: Self.activePersistent)
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            #expect(h.snapshot.state.device(named: Self.name)?.drift == .inSync)
            // What ChangeJournal does with every change it sees, from the first sync on.
            var narrator = DriftNarrator()
            #expect(h.recorder.all.compactMap { narrator.entry(for: $0) }.isEmpty)

            // `virsh nodedev-update --config` with another type: libvirt sends UPDATE.
            fake.updateDefinition(of: Self.name, xml: Self.xml(type: "mtty-2"))
            let updated = try #require(await h.changes(from: .nodeDevice(name: Self.name, kind: .updated)))
            let new = try #require(updated.compactMap(\.device).first { $0.name == Self.name })
            #expect(new.drift == .drifted)
            #expect(new.definedConfig?.mdevType == "mtty-2")
            #expect(new.mdevType == "mtty-1")
            let drifted = updated.compactMap { narrator.entry(for: $0) }
            #expect(drifted.map(\.event) == [.definitionDrifted])
            #expect(drifted.first?.level == .warning)
            #expect(drifted.first?.message.contains("runs as type mtty-1 but its definition now says type mtty-2") == true)
            #expect(drifted.first?.metadata[LogKey.mdevUUID] == Self.uuid)

            // A second UPDATE with nothing new is no news.
            let again = try #require(await h.changes(from: .nodeDevice(name: Self.name, kind: .updated)))
            #expect(again.compactMap { narrator.entry(for: $0) }.isEmpty)

            // Destroy and start: the start applied the definition.
            fake.updateFlags(of: Self.name) { $0.active = false }
            let stopped = try #require(await h.changes(from: .nodeDevice(name: Self.name, kind: .deleted)))
            #expect(stopped.compactMap { narrator.entry(for: $0) }.map(\.event) == [.definitionInSync])
            try fake.putDevice(xml: Self.xml(type: "mtty-2"), flags: Self.activePersistent)
            fake.updateDefinition(of: Self.name, xml: nil)
            let started = try #require(await h.changes(from: .nodeDevice(name: Self.name, kind: .created)))
            #expect(started.compactMap { narrator.entry(for: $0) }.isEmpty)
            let device = try #require(h.snapshot.state.device(named: Self.name))
            #expect(device.mdevType == "mtty-2")
            #expect(device.drift == .inSync)
        }
    }

    @Test func theNarratorSaysEachWayOnceWhateverPassesBetween() throws {
        guard case .mdev(let def) = try NodeDeviceXML.parse(Self.xml(type: "t1")) else { throw XMLParseError(object: "x", problem: "not an mdev") }
        let inSync = MdevDevice(definition: def, flags: Self.activePersistent, definedConfig: MdevConfig(mdevType: "t1", attrs: []))
        let drifted = MdevDevice(definition: def, flags: Self.activePersistent, definedConfig: MdevConfig(mdevType: "t2", attrs: []))
        let unknown = MdevDevice(definition: def, flags: Self.activePersistent)
        var transient = inSync
        transient.flags.persistent = false
        var n = DriftNarrator()
        #expect(n.entry(for: .deviceAdded(inSync)) == nil)
        let first = n.entry(for: .deviceChanged(old: inSync, new: drifted))
        #expect(first?.event == .definitionDrifted)
        #expect(first?.message == "mdev \(Self.uuid) on pci_0000_00_02_0 runs as type t1 but its definition now says type t2; its next start applies the definition")
        #expect(n.entry(for: .deviceChanged(old: drifted, new: drifted)) == nil)
        // libvirt stops telling (an older daemon after a reconnect, a failed read), then tells again.
        #expect(n.entry(for: .deviceChanged(old: drifted, new: unknown)) == nil)
        #expect(n.entry(for: .deviceChanged(old: unknown, new: drifted)) == nil)
        #expect(n.entry(for: .deviceChanged(old: drifted, new: unknown)) == nil)
        #expect(n.entry(for: .deviceChanged(old: unknown, new: inSync))?.event == .definitionInSync)
        #expect(n.entry(for: .deviceChanged(old: inSync, new: inSync)) == nil)
        // Found drifted by a first sync; gone; back drifted: said again.
        #expect(n.entry(for: .deviceAdded(drifted))?.event == .definitionDrifted)
        #expect(n.entry(for: .deviceRemoved(drifted)) == nil)
        #expect(n.entry(for: .deviceAdded(drifted))?.event == .definitionDrifted)
        // Undefined while drifted: no definition left, nothing to say; drifted again later is news again.
        #expect(n.entry(for: .deviceChanged(old: drifted, new: transient)) == nil)
        #expect(n.entry(for: .deviceChanged(old: transient, new: drifted))?.event == .definitionDrifted)
    }
}
