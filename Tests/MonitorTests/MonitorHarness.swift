import Logging
import Synchronization
import TestSupport
@testable import Monitor

/// Collects every `IndexChange` a subscriber sees, so tests can wait for and compare exact sequences.
final class ChangeRecorder: Sendable {
    private let recorded = Mutex<[IndexChange]>([])

    var all: [IndexChange] { recorded.withLock { $0 } }
    var count: Int { recorded.withLock { $0.count } }

    func drain(_ subscription: IndexSubscription) async {
        for await update in subscription {
            let changes = update.changes
            recorded.withLock { $0 += changes }
        }
    }

    /// The changes after the first `mark`, once `predicate` holds for one of them (bounded wait).
    /// - Returns: nil when no such change arrived in time.
    func changes(after mark: Int, until predicate: @escaping @Sendable (IndexChange) -> Bool) async -> [IndexChange]? {
        guard await eventually({ self.all.dropFirst(mark).contains(where: predicate) }) else { return nil }
        let since = Array(all.dropFirst(mark))
        let end = since.firstIndex(where: predicate)!
        return Array(since[...end])
    }
}

/// A `MonitorService` running against a `FakeLibvirt`, with its changes recorded from before the first sync.
struct MonitorHarness: Sendable {
    let fake: FakeLibvirt
    let service: MonitorService
    let recorder: ChangeRecorder

    var snapshot: IndexSnapshot { service.index.snapshot }

    /// `MonitorService.waitForFirstSync()`, then until the recorder has the sync's changes too, so a
    /// `recorder.count` taken afterwards marks everything before the test's own actions.
    func waitForFirstSync() async {
        await service.waitForFirstSync()
        _ = await recorder.changes(after: 0, until: { $0 == .connection(.synced) })
    }

    /// Emits `event` followed by an event for a marker, and returns exactly the changes `event` caused:
    /// the queue hands objects out in order within a lane, so once the marker's change is recorded,
    /// everything `event` did has been recorded too. The marker is removed again afterwards.
    /// A node-device UPDATE waits in the queue's update lane, behind every lifecycle event, so its marker
    /// is an UPDATE too (of a marker mdev whose autostart flips); any other event's marker is a domain.
    /// - Returns: nil when the marker never arrived.
    func changes(from event: LibvirtEvent, marker: String = "marker") async -> [IndexChange]? {
        if case .nodeDevice(_, .updated) = event { return await updateChanges(from: event, marker: marker) }
        let mark = recorder.count
        fake.putDomain(DomainRecord(name: marker, inactiveXML: "<domain type='kvm'><name>\(marker)</name></domain>",
                                    active: false, persistent: true, autostart: false))
        guard fake.emit(event), fake.emit(.domain(name: marker, kind: .defined)) else { return nil }
        guard var changes = await recorder.changes(after: mark, until: { change in
            if case .domainAdded(let d) = change { d.name == marker } else { false }
        }) else { return nil }
        changes.removeLast()
        // Leave the index as it was, apart from what `event` did.
        fake.removeDomain(named: marker)
        let removalMark = recorder.count
        fake.emit(.domain(name: marker, kind: .undefined))
        _ = await recorder.changes(after: removalMark, until: { change in
            if case .domainRemoved(let d) = change { d.name == marker } else { false }
        })
        return changes
    }

    private func updateChanges(from event: LibvirtEvent, marker: String) async -> [IndexChange]? {
        let uuid = "ffffffff-eeee-4eee-8eee-000000000000"
        let name = "mdev_ffffffff_eeee_4eee_8eee_000000000000_\(marker)"
        let xml = "<device><name>\(name)</name><parent>\(marker)_parent</parent><capability type='mdev'>"
            + "<type id='marker'/><uuid>\(uuid)</uuid></capability></device>"
        let mark = recorder.count
        fake.putDevice(named: name, xml: xml, flags: DeviceFlags(active: false, persistent: true, autostart: false), listing: .mdevs)
        guard fake.emit(event), fake.emit(.nodeDevice(name: name, kind: .updated)) else { return nil }
        guard var changes = await recorder.changes(after: mark, until: { $0.device?.name == name }) else { return nil }
        changes.removeLast()
        fake.removeDevice(named: name)
        let removalMark = recorder.count
        fake.emit(.nodeDevice(name: name, kind: .undefined))
        _ = await recorder.changes(after: removalMark, until: { change in
            if case .deviceRemoved(let d) = change { d.name == name } else { false }
        })
        return changes
    }
}

extension MonitorConfiguration {
    /// Tiny backoff so reconnect tests run in milliseconds.
    static let test = MonitorConfiguration(
        uri: "test:///fake", readOnly: true, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(80))
}

/// Runs a `MonitorService` on `fake` for the duration of `body`, its changes recorded from before the first
/// sync and journaled as in the daemon; then cancels it and waits for it and the recorder to end.
func withMonitor(
    _ fake: FakeLibvirt,
    logger: Logger = Logger(label: "mdevmon.test", factory: { _ in SwiftLogNoOpLogHandler() }),
    _ body: (MonitorHarness) async throws -> Void
) async throws {
    let recorder = ChangeRecorder()
    try await TestSupport.withMonitor(
        .test, connector: fake, logger: logger, journal: true, subscriber: { await recorder.drain($0) }
    ) { service in
        try await body(MonitorHarness(fake: fake, service: service, recorder: recorder))
    }
}
