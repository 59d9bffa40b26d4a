import Foundation
import Testing
import TestSupport
@testable import Exporter
@testable import Monitor

/// One object libvirt lists but cannot give (a sick GPU's sysfs read fails) never fails the full sync: the
/// rest is indexed and the first sync completes; the sick object keeps its last known state, marked, and is
/// journaled once; the mark clears when it reads again.
@Suite struct SickObjectTests {
    static let domain = "QEMUGuest2"

    @Test func aSickObjectAtStartDoesNotFailTheFirstSync() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let pci = try MonitorServiceEventTests.parent("pci_parent_mdev_types.xml").name
        fake.makeSick(pci)
        fake.makeSick(Self.domain)
        let log = LogCapture()
        try await withMonitor(fake, logger: log.logger) { h in
            await h.waitForFirstSync()
            let snapshot = h.snapshot
            #expect(snapshot.status.synced)
            #expect(snapshot.status.fetchFailures.keys.sorted() == [LibvirtObject(.domain, Self.domain), LibvirtObject(.nodeDevice, pci)])
            // Everything else is there; the sick objects were never known, so they are only marked.
            #expect(snapshot.state.parents.count == 2 && snapshot.state.parents[pci] == nil)
            #expect(snapshot.state.devices.count == 1 && snapshot.state.domains.isEmpty)
            let errors = log.records(.libvirtOperationFailed).filter { $0.level == .error }
            #expect(errors.count == 2, "\(errors.map(\.message))")
            #expect(errors.contains { $0.message.contains("libvirt cannot read node device \(pci): internal error: failed to read available_instances") })
            #expect(errors.contains { $0.value(LogKey.domainName) == Self.domain })
            let scrape = String(decoding: MetricsRenderer.render(
                snapshot: snapshot, build: BuildInfo(version: "t", revision: "t", swiftVersion: "t"), process: nil, previousScrape: nil), as: UTF8.self)
            #expect(scrape.contains("mdev_libvirt_fetch_failed{kind=\"node_device\",name=\"\(pci)\"} 1\n"))
            #expect(scrape.contains("mdev_libvirt_fetch_failed{kind=\"domain\",name=\"\(Self.domain)\"} 1\n"))
        }
    }

    @Test func aKnownObjectThatFallsSickKeepsItsLastStateUntilItReadsAgain() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let pci = try MonitorServiceEventTests.parent("pci_parent_mdev_types.xml").name
        let log = LogCapture()
        try await withMonitor(fake, logger: log.logger) { h in
            await h.waitForFirstSync()
            let healthy = h.snapshot.state
            #expect(healthy.parents[pci] != nil && healthy.domains[Self.domain] != nil)

            // Sick while mdevmon reconnects (a libvirtd restart): the resync keeps both as they were.
            fake.makeSick(pci)
            fake.makeSick(Self.domain)
            let reconnects = h.snapshot.status.reconnects
            fake.closeConnection(reason: "libvirtd restarted")
            #expect(await eventually { h.snapshot.status.reconnects > reconnects && h.snapshot.status.synced })
            #expect(h.snapshot.state == healthy)
            #expect(h.snapshot.status.fetchFailures.count == 2)
            #expect(log.records(.libvirtOperationFailed).filter { $0.level == .error }.count == 2)

            // An event whose fetch fails again says nothing new; one more resync neither.
            let defined = EventCounterKey(source: "domain", event: "defined")
            let counted = h.snapshot.status.events[defined] ?? 0
            fake.emit(.domain(name: Self.domain, kind: .defined))
            #expect(await eventually { (h.snapshot.status.events[defined] ?? 0) > counted }, "the event was not handled")
            fake.closeConnection(reason: "libvirtd restarted")
            #expect(await eventually { h.snapshot.status.reconnects > reconnects + 1 && h.snapshot.status.synced })
            #expect(log.records(.libvirtOperationFailed).filter { $0.level == .error }.count == 2)
            #expect(h.snapshot.state == healthy)

            // It reads again: the next event clears the mark (with a notice) and applies what changed.
            fake.heal(Self.domain)
            fake.putDomain(DomainRecord(name: Self.domain, inactiveXML: MonitorServiceEventTests.domainXML(Self.domain, [Sample.uuidC]),
                                        active: false, persistent: true, autostart: true))
            fake.emit(.domain(name: Self.domain, kind: .defined))
            #expect(await eventually { h.snapshot.status.fetchFailures.keys.sorted() == [LibvirtObject(.nodeDevice, pci)] })
            #expect(h.snapshot.state.domains[Self.domain]?.autostart == true)
            #expect(log.records.contains { $0.level == .notice && $0.message == "libvirt reads domain \(Self.domain) again" })

            // The parent: cleared by the next full sync that reads it.
            fake.heal(pci)
            fake.closeConnection(reason: "libvirtd restarted")
            #expect(await eventually { h.snapshot.status.fetchFailures.isEmpty && h.snapshot.status.synced })
            let fresh = try fake.freshSync().state
            #expect(h.snapshot.state == fresh)
        }
    }

    @Test func aSickParentDoesNotKeepItsMdevsChangeOut() async throws {
        let fake = FakeLibvirt()
        let device = MonitorServiceStormTests.mdevXML(7)
        fake.putDevice(named: device.name, xml: device.xml, flags: FakeLibvirt.inactivePersistent, listing: .mdevs)
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let parent = try #require(h.snapshot.state.device(named: device.name)?.parent)
            fake.makeSick(parent)
            // Started: the parent is re-read for its capacity, and that read fails.
            fake.updateFlags(of: device.name) { $0.active = true }
            fake.emit(.nodeDevice(name: device.name, kind: .created))
            #expect(await eventually { h.snapshot.state.device(named: device.name)?.active == true })
            #expect(await eventually { h.snapshot.status.fetchFailures[LibvirtObject(.nodeDevice, parent)] != nil })

            // The parent reads again at the next re-read through its mdev: the mark goes.
            fake.heal(parent)
            fake.updateFlags(of: device.name) { $0.active = false }
            fake.emit(.nodeDevice(name: device.name, kind: .deleted))
            #expect(await eventually { h.snapshot.status.fetchFailures.isEmpty }, "the parent's mark stayed")
        }
    }
}
