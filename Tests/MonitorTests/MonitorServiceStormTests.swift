import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Monitor

/// An event storm through the whole Monitor: bounded memory, coalesced fetches, and an index that ends
/// equal to libvirt's.
@Suite struct MonitorServiceStormTests {
    static func mdevXML(_ i: Int) -> (name: String, xml: String) {
        let uuid = String(format: "5e0c%04x-0000-4000-8000-%012x", i, i)
        let name = "mdev_\(uuid.replacing("-", with: "_"))_0000_00_02_0"
        return (name, """
            <device><name>\(name)</name><parent>pci_0000_00_02_0</parent>
            <capability type='mdev'><type id='nvidia-63'/><uuid>\(uuid)</uuid><iommuGroup number='\(i)'/></capability></device>
            """)
    }

    /// 100,000 UPDATE events for 1,000 devices whose flags keep changing under the storm.
    @Test func hundredThousandUpdatesForAThousandDevices() async throws {
        let fake = FakeLibvirt()
        let devices = (0..<1000).map(Self.mdevXML)
        for d in devices { fake.putDevice(named: d.name, xml: d.xml, flags: FakeLibvirt.inactivePersistent, listing: .mdevs) }
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            fake.resetFetchLog()
            let queue = try #require(fake.newestEventQueue)
            // libvirt's side runs on a thread of its own, not on the pool the Monitor needs.
            let maxWaiting = await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
                Thread {
                    var maxWaiting = 0
                    for i in 0..<100_000 {
                        let d = devices[i % 1000]
                        if i % 7 == 0 { fake.updateFlags(of: d.name) { $0.active.toggle() } }
                        fake.emit(.nodeDevice(name: d.name, kind: .updated))
                        if i % 1000 == 0 { maxWaiting = max(maxWaiting, queue.waiting) }
                    }
                    done.resume(returning: maxWaiting)
                }.start()
            }
            // The marker is handled after everything queued before it: an UPDATE too, so in the same lane
            // (first-arrival order).
            let mark = h.recorder.count
            let end = Self.mdevXML(1000)
            fake.putDevice(named: end.name, xml: end.xml, flags: FakeLibvirt.inactivePersistent, listing: .mdevs)
            fake.emit(.nodeDevice(name: end.name, kind: .updated))
            _ = try #require(await h.recorder.changes(after: mark, until: { $0.device?.name == end.name }))
            // Bounded by the number of objects, not events: at most one entry per device (and the marker).
            #expect(maxWaiting <= 1001)
            let fetches = fake.nodeDeviceFetches.count
            #expect(fetches < 100_000, "no coalescing: \(fetches) fetches")
            #expect(try h.snapshot.state == fake.freshSync().state)
            let counted = h.snapshot.status.events[EventCounterKey(source: "nodedev", event: "updated")]
            #expect(counted == 100_001)
            print("storm (fake seam): 100000 events → \(fetches) device fetches, at most \(maxWaiting) objects queued")
        }
    }

    /// A queue smaller than the storm falls back to one full resync, and still ends equal to libvirt.
    @Test func anOverflowingStormResyncs() async throws {
        let fake = FakeLibvirt(eventQueueCapacity: 50)
        let devices = (0..<200).map(Self.mdevXML)
        for d in devices { fake.putDevice(named: d.name, xml: d.xml, flags: FakeLibvirt.inactivePersistent, listing: .mdevs) }
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let queue = try #require(fake.newestEventQueue)
            // libvirtd is slow: the Monitor is stuck in the first fetch while 200 objects change.
            fake.pauseFetches()
            for d in devices {
                fake.updateFlags(of: d.name) { $0.autostart = true }
                fake.emit(.nodeDevice(name: d.name, kind: .updated))
                if d.name == devices[0].name {
                    #expect(await eventually { fake.blockedFetches.load(ordering: .sequentiallyConsistent) == 1 })
                }
            }
            #expect(queue.stats.overflows == 1)
            #expect(queue.waiting == 0)
            fake.resumeFetches()
            #expect(await eventually { (try? h.snapshot.state == fake.freshSync().state) == true })
            #expect(h.snapshot.state.devices.values.allSatisfy { $0.autostart })
        }
    }
}
