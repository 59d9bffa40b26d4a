import Testing
import TestSupport
@testable import Monitor

/// `MonitorService` against `FakeLibvirt`: the initial sync, then each event fetching only what it concerns.
@Suite struct MonitorServiceEventTests {
    static let apName = "mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix"
    static let ccwName = "mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe"
    static let parentFlags = DeviceFlags(active: true, persistent: false, autostart: false)

    /// Three parents, one defined mdev (`mdev_ap.xml`) and one domain whose mdevs are not on this host.
    static func populatedFake() throws -> FakeLibvirt {
        let fake = FakeLibvirt()
        for file in ["ap_matrix_parent.xml", "css_parent.xml", "pci_parent_mdev_types.xml"] {
            try fake.putDevice(xml: try Fixture.text(file), flags: parentFlags)
        }
        try fake.putDevice(xml: try Fixture.text("mdev_ap.xml"))
        fake.putDomain(DomainRecord(name: "QEMUGuest2", inactiveXML: try Fixture.text("domain_with_mdev.xml"),
                                    active: false, persistent: true, autostart: false))
        return fake
    }

    static func definition(_ file: String) throws -> MdevDefinition {
        guard case .mdev(let definition) = try NodeDeviceXML.parse(try Fixture.text(file)) else {
            throw XMLParseError(object: file, problem: "fixture is not an mdev")
        }
        return definition
    }

    static func parent(_ file: String) throws -> ParentDevice {
        guard case .parent(let parent) = try NodeDeviceXML.parse(try Fixture.text(file)) else {
            throw XMLParseError(object: file, problem: "fixture is not a parent")
        }
        return parent
    }

    /// A minimal inactive domain XML referencing `uuids` as mdev hostdevs.
    static func domainXML(_ name: String, _ uuids: [String]) -> String {
        let hostdevs = uuids.map {
            "<hostdev mode='subsystem' type='mdev' model='vfio-ap'><source><address uuid='\($0)'/></source></hostdev>"
        }.joined()
        return "<domain type='kvm'><name>\(name)</name><uuid>9f0c4e1a-0000-4000-8000-000000000001</uuid>"
            + "<devices>\(hostdevs)</devices></domain>"
    }

    @Test func initialSyncBuildsTheIndex() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let snapshot = h.snapshot
            #expect(snapshot.status.synced)
            #expect(snapshot.status.connected)
            #expect(snapshot.status.lastSyncTime != nil)
            #expect(snapshot.status.reconnects == 0)
            #expect(try snapshot.state == fake.freshSync().state)

            let ap = MdevDevice(definition: try Self.definition("mdev_ap.xml"), flags: FakeLibvirt.inactivePersistent)
            let apMatrix = try Self.parent("ap_matrix_parent.xml")
            let css = try Self.parent("css_parent.xml")
            let pci = try Self.parent("pci_parent_mdev_types.xml")
            #expect(snapshot.sortedDevices == [ap])
            #expect(snapshot.sortedParents == [apMatrix, css, pci])
            #expect(snapshot.sortedDomains.map(\.mdevUUIDs) == [
                ["53764d0e-85a0-42b4-af5c-2046b460b1dc", "c2177883-f1bb-47f0-914d-32a22e3a8804"],
            ])

            // A subscriber from before the sync sees it as ordinary additions, then `.synced`.
            let changes = await h.recorder.changes(after: 0, until: { $0 == .connection(.synced) })
            #expect(changes == [
                .domainAdded(snapshot.sortedDomains[0]),
                .parentAdded(apMatrix), .parentAdded(css), .parentAdded(pci),
                .deviceAdded(ap),
                .connection(.synced),
            ])
        }
    }

    @Test func definedEventAddsTheDeviceFetchingOnlyIt() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let name = try fake.putDevice(xml: try Fixture.text("mdev_ccw.xml"))
            fake.resetFetchLog()

            let changes = await h.changes(from: .nodeDevice(name: name, kind: .defined))
            let ccw = MdevDevice(definition: try Self.definition("mdev_ccw.xml"), flags: FakeLibvirt.inactivePersistent)
            #expect(changes == [.deviceAdded(ccw)])
            // A definition does not touch sysfs: the parent's capacity is not re-read.
            #expect(fake.nodeDeviceFetches == [Self.ccwName])
            #expect(h.snapshot.state.device(named: Self.ccwName) == ccw)
            #expect(try h.snapshot.state == fake.freshSync().state)
            #expect(h.snapshot.status.events[EventCounterKey(source: "nodedev", event: "defined")] == 1)
        }
    }

    @Test func updateEventWithAutostartFlipChangesTheDevice() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.device(named: Self.apName))
            fake.updateFlags(of: Self.apName) { $0.autostart = true }

            let changes = await h.changes(from: .nodeDevice(name: Self.apName, kind: .updated))
            var new = old
            new.flags.autostart = true
            #expect(changes == [.deviceChanged(old: old, new: new)])
            // This one and the harness's marker UPDATE behind it.
            #expect(h.snapshot.status.events[EventCounterKey(source: "nodedev", event: "updated")] == 2)
        }
    }

    @Test func startRefreshesTheParentsCapacityToo() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.device(named: Self.apName))
            let oldParent = try #require(h.snapshot.state.parents["ap_matrix"])
            fake.updateFlags(of: Self.apName) { $0.active = true }
            try fake.putDevice(
                xml: try Fixture.text("ap_matrix_parent.xml").replacing("65536", with: "65535"),
                flags: Self.parentFlags)

            let changes = await h.changes(from: .nodeDevice(name: Self.apName, kind: .created))
            var new = old
            new.flags.active = true
            var newParent = oldParent
            newParent.types[0].availableInstances = 65535
            #expect(changes == [.deviceChanged(old: old, new: new), .parentChanged(old: oldParent, new: newParent)])
        }
    }

    /// A transient mdev that is destroyed vanishes from libvirt, yet its parent regains an instance.
    @Test func vanishedDeviceRefreshesItsParentsCapacity() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.device(named: Self.apName))
            let oldParent = try #require(h.snapshot.state.parents["ap_matrix"])
            fake.removeDevice(named: Self.apName)
            try fake.putDevice(
                xml: try Fixture.text("ap_matrix_parent.xml").replacing("65536", with: "65537"),
                flags: Self.parentFlags)

            let changes = await h.changes(from: .nodeDevice(name: Self.apName, kind: .deleted))
            var newParent = oldParent
            newParent.types[0].availableInstances = 65537
            #expect(changes == [.deviceRemoved(old), .parentChanged(old: oldParent, new: newParent)])
        }
    }

    @Test func undefinedEventRemovesTheDevice() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.device(named: Self.apName))
            fake.removeDevice(named: Self.apName)
            fake.resetFetchLog()

            let changes = await h.changes(from: .nodeDevice(name: Self.apName, kind: .undefined))
            #expect(changes == [.deviceRemoved(old)])
            // Only the device: undefining does not change the parent's capacity.
            #expect(fake.nodeDeviceFetches == [Self.apName])
            #expect(h.snapshot.state.devices.isEmpty)
        }
    }

    @Test func deviceThatVanishedBeforeTheFetchIsRemovedWithoutError() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.device(named: Self.apName))
            fake.vanishOnNextFetch(Self.apName)

            let changes = await h.changes(from: .nodeDevice(name: Self.apName, kind: .deleted))
            #expect(changes == [.deviceRemoved(old)])
            #expect(h.snapshot.status.synced)
            #expect(h.snapshot.status.lastError == nil)

            // An event for a device the index never had (nor libvirt, by now) changes nothing.
            #expect(await h.changes(from: .nodeDevice(name: "mdev_gone", kind: .deleted)) == [])
        }
    }

    /// libvirt 11.3 drops a removed transient mdev from its list before it sends DELETED, and UPDATEs for
    /// it may be queued already: the UPDATE's fetch is the one that finds it gone, and the instance it
    /// freed must show on its parent then (the later DELETED no longer knows the parent).
    @Test func anUpdateThatFindsAnActiveDeviceGoneRefreshesItsParent() async throws {
        let fake = try Self.populatedFake()
        fake.updateFlags(of: Self.apName) { $0.active = true }
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try #require(h.snapshot.state.parents["ap_matrix"])
            try fake.putDevice(
                xml: try Fixture.text("ap_matrix_parent.xml")
                    .replacing("<availableInstances>65536<", with: "<availableInstances>65535<"),
                flags: Self.parentFlags)
            fake.vanishOnNextFetch(Self.apName)
            let changes = try #require(await h.changes(from: .nodeDevice(name: Self.apName, kind: .updated)))
            #expect(changes.contains { if case .deviceRemoved(let d) = $0 { d.name == Self.apName } else { false } })
            var new = old
            new.types[0].availableInstances = 65535
            #expect(changes.contains(.parentChanged(old: old, new: new)))
        }
    }

    @Test func parentEventRefreshesOnlyTheParent() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let old = try Self.parent("css_parent.xml")
            try fake.putDevice(
                xml: try Fixture.text("css_parent.xml")
                    .replacing("<availableInstances>1<", with: "<availableInstances>0<"),
                flags: Self.parentFlags)
            fake.resetFetchLog()

            let changes = await h.changes(from: .nodeDevice(name: "css_0_0_fffe", kind: .updated))
            var new = old
            new.types[0].availableInstances = 0
            #expect(changes == [.parentChanged(old: old, new: new)])
            #expect(fake.nodeDeviceFetches.filter { !$0.hasSuffix("_marker") } == ["css_0_0_fffe"])
        }
    }

    @Test func deviceWithBadXMLIsSkippedAndEventsContinue() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let name = "mdev_200f228a_c80a_4d50_bfb7_f5a0e4e34045_0000_00_02_0"
            fake.putDevice(named: name, xml: try Fixture.text("mdev_missing_type.xml"), listing: .mdevs)

            #expect(await h.changes(from: .nodeDevice(name: name, kind: .defined)) == [])
            #expect(h.snapshot.state.device(named: name) == nil)
            #expect(h.snapshot.status.synced)
        }
    }

    @Test func domainEventsSetAndClearReferences() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let device = try #require(h.snapshot.state.device(named: Self.apName))
            let record = DomainRecord(
                name: "guest", inactiveXML: Self.domainXML("guest", [device.uuid.uppercased()]), active: false,
                persistent: true, autostart: true)
            fake.putDomain(record)
            fake.resetFetchLog()

            let defined = await h.changes(from: .domain(name: "guest", kind: .defined), marker: "m1")
            let domain = try DomainInfo(record)
            #expect(domain.mdevUUIDs == [device.uuid])
            var referenced = device
            referenced.domains = ["guest"]
            #expect(defined == [.domainAdded(domain), .deviceChanged(old: device, new: referenced)])
            #expect(fake.domainFetches.first == "guest")
            #expect(fake.nodeDeviceFetches == [])

            // Starting the domain changes only its state.
            fake.putDomain(DomainRecord(name: "guest", inactiveXML: record.inactiveXML, active: true,
                                        persistent: true, autostart: true))
            let started = await h.changes(from: .domain(name: "guest", kind: .started), marker: "m2")
            var running = domain
            running.active = true
            #expect(started == [.domainChanged(old: domain, new: running)])

            fake.removeDomain(named: "guest")
            let undefined = await h.changes(from: .domain(name: "guest", kind: .undefined), marker: "m3")
            #expect(undefined == [.domainRemoved(running), .deviceChanged(old: referenced, new: device)])
            #expect(try h.snapshot.state == fake.freshSync().state)
            #expect(h.snapshot.status.events[EventCounterKey(source: "domain", event: "started")] == 1)
        }
    }

    @Test func hotplugEventsTrackTheLiveXML() async throws {
        let fake = try Self.populatedFake()
        let capture = LogCapture()
        try await withMonitor(fake, logger: capture.logger) { h in
            await h.waitForFirstSync()
            let device = try #require(h.snapshot.state.device(named: Self.apName))
            let config = Self.domainXML("guest", [])
            let stopped = DomainRecord(name: "guest", inactiveXML: config, active: false, persistent: true, autostart: false)
            fake.putDomain(stopped)
            _ = await h.changes(from: .domain(name: "guest", kind: .defined), marker: "m0")

            // `virsh attach-device --live`: only the live XML changes, and only DEVICE_ADDED says so.
            fake.putDomain(DomainRecord(name: "guest", inactiveXML: config, liveXML: Self.domainXML("guest", [device.uuid]),
                                        active: true, persistent: true, autostart: false))
            let added = await h.changes(from: .domain(name: "guest", kind: .deviceAdded), marker: "m1")
            var inUse = device
            inUse.inUseBy = ["guest"]
            #expect(added?.last == .deviceChanged(old: device, new: inUse))
            #expect(h.snapshot.state.devices[device.key]?.domains == [], "a live attach is no reference")
            #expect(added?.last?.logEntry?.event == .deviceUseChanged)

            // A detach the guest refused: the device stays, and the failure is journaled.
            let mark = capture.records.count
            fake.emit(.domain(name: "guest", kind: .deviceRemovalFailed))
            #expect(await eventually { capture.records(.deviceRemovalFailed).count == 1 })
            #expect(capture.records.dropFirst(mark).first { $0.level == .warning }?.message.contains(device.uuid) == true)
            #expect(h.snapshot.state.devices[device.key]?.inUseBy == ["guest"])

            // DEVICE_REMOVED: released.
            fake.putDomain(DomainRecord(name: "guest", inactiveXML: config, liveXML: config, active: true, persistent: true,
                                        autostart: false))
            let removed = await h.changes(from: .domain(name: "guest", kind: .deviceRemoved), marker: "m2")
            #expect(removed?.last == .deviceChanged(old: inUse, new: device))
            #expect(try h.snapshot.state == fake.freshSync().state)
            #expect(h.snapshot.status.events[EventCounterKey(source: "domain", event: "device_added")] == 1)
            #expect(h.snapshot.status.events[EventCounterKey(source: "domain", event: "device_removal_failed")] == 1)
        }
    }

    @Test func aConfigWatchThatCouldNotStartIsAWarning() async throws {
        let fake = try Self.populatedFake()
        fake.configWatchProblem.withLock { $0 = "inotify_init1: Too many open files" }
        let capture = LogCapture()
        try await withMonitor(fake, logger: capture.logger) { h in
            await h.waitForFirstSync()
            let warning = capture.records(atLeast: .warning).first { $0.message.contains("cannot watch libvirt's domain configuration files") }
            #expect(warning?.message.contains("Too many open files") == true)
        }
    }

    @Test func createdEventForATransientDeviceWithoutAKnownParent() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            // The README's flags for this udev-discovered device: active, not persistent.
            let flags = DeviceFlags(active: true, persistent: false, autostart: false)
            let name = try fake.putDevice(xml: try Fixture.text("mdev_transient_active.xml"), flags: flags)
            fake.resetFetchLog()

            let changes = await h.changes(from: .nodeDevice(name: name, kind: .created))
            let device = MdevDevice(definition: try Self.definition("mdev_transient_active.xml"), flags: flags)
            #expect(changes == [.deviceAdded(device)])
            // Its parent css_0_0_0052 is not on this host: looked up, not found, nothing else fetched.
            #expect(fake.nodeDeviceFetches == [name, "css_0_0_0052"])
            #expect(changes?.first?.logEntry?.event == .deviceCreated)
        }
    }

    @Test func sameUUIDUnderTwoParentsIsTwoEntriesBothReferenced() async throws {
        let fake = FakeLibvirt()
        let a = try fake.putDevice(xml: try Fixture.text("mdev_same_uuid_parent_a.xml"))
        let b = try fake.putDevice(xml: try Fixture.text("mdev_same_uuid_parent_b.xml"))
        let uuid = "18a71809-1624-4b03-b918-58d7089d1abd"
        fake.putDomain(DomainRecord(name: "guest", inactiveXML: Self.domainXML("guest", [uuid]), active: false,
                                    persistent: true, autostart: false))
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let devices = h.snapshot.state.devices(uuid: uuid)
            #expect(devices.map(\.parent) == ["pci_0000_00_02_0", "pci_0000_00_03_0"])
            #expect(devices.map(\.domains) == [["guest"], ["guest"]])

            // Undefining one name leaves the other entry alone.
            fake.removeDevice(named: a)
            let changes = await h.changes(from: .nodeDevice(name: a, kind: .undefined))
            #expect(changes == [.deviceRemoved(devices[0])])
            #expect(h.snapshot.state.devices(uuid: uuid).map(\.name) == [b])
        }
    }

    @Test func withConnectionRunsOnTheLiveConnection() async throws {
        let fake = try Self.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let names = try await h.service.withConnection("list mdevs") { try $0.listNodeDevices(.mdevs) }
            #expect(names == [Self.apName])
            try await h.service.withConnection("start") { try $0.startNodeDevice(named: Self.apName) }
            let record = try await h.service.withConnection("fetch") { try $0.nodeDevice(named: Self.apName) }
            #expect(record?.flags.active == true)
        }
    }
}
