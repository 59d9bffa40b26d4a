import Foundation
import Monitor
import TestSupport
import Testing

/// A real burst: mdevctl definitions rewritten over and over under libvirtd, which reports each change
/// as node-device events. The Monitor coalesces them per device and ends equal to libvirt's list.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct EventStormTests {
    @Test func rewritingDefinitionsInABurstIsCoalescedAndEndsEqualToLibvirt() async throws {
        let dir = StateFileCrashTests.mdevctlDir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let uuids = (0..<100).map { _ in LibvirtHost.newUUID() }
        let written = StateFileCrashTests.Written()
        defer { written.removeAll() }
        func write(_ uuid: String, autostart: Bool) {
            let json = #"{"mdev_type": "nvidia-63", "start": "\#(autostart ? "auto" : "manual")", "attrs": []}"#
            _ = FileManager.default.createFile(atPath: "\(dir)/\(uuid)", contents: Data(json.utf8))
        }
        try await withMonitor { monitor in
            await monitor.waitForFirstSync()
            let eventsBefore = monitor.index.snapshot.status.events.values.reduce(0, +)
            let handedOutBefore = monitor.eventQueueStats?.handedOut ?? 0
            for uuid in uuids {
                written.add("\(dir)/\(uuid)")
                write(uuid, autostart: false)
            }
            // Ten rewrites of every definition, flipping autostart, as fast as the files can be written.
            for round in 0..<10 {
                for uuid in uuids { write(uuid, autostart: round % 2 == 0) }
            }
            // The last rewrite left autostart off; wait until libvirt's own list says so, then the index must agree.
            #expect(await eventually(timeout: .seconds(120)) {
                guard let expected = try? LibvirtRestartTests.fresh() else { return false }
                let settled = uuids.allSatisfy { uuid in expected.devices.contains { $0.uuid == uuid && !$0.autostart } }
                return settled && Listing(monitor.index.snapshot) == expected
            }, "the index never matched libvirt's list after the burst")
            let events = monitor.index.snapshot.status.events.values.reduce(0, +) - eventsBefore
            let fetches = (monitor.eventQueueStats?.handedOut ?? 0) - handedOutBefore
            print("storm (real libvirtd): \(events) events for \(uuids.count) devices → \(fetches) fetches")
            // What libvirt coalesces itself and what the queue does depend on timing; the claims are an index
            // equal to libvirt's and an event count that shows the burst happened.
            #expect(events >= uuids.count, "libvirt reported fewer events than devices: \(events)")
        }
    }
}
