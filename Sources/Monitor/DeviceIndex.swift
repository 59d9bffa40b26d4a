public import Foundation
import Synchronization

/// The single owner of index state. Every mutation publishes a new snapshot and broadcasts the
/// `IndexChange`s it caused to every subscriber, in order.
public actor DeviceIndex {
    private var state = IndexState()
    private var status: MonitorStatus
    private var subscribers: [UUID: AsyncStream<IndexChange>.Continuation] = [:]
    private let published: SnapshotBox

    public init(uri: String) {
        status = MonitorStatus(uri: uri)
        published = SnapshotBox(IndexSnapshot(state: IndexState(), status: status))
    }

    /// The latest snapshot. Not actor-isolated: it reads a lock-protected value, so a scrape never
    /// queues behind event handling.
    public nonisolated var snapshot: IndexSnapshot { published.value }

    /// A stream of every change from now on. Unbounded, so a slow consumer loses nothing.
    public func changes() -> AsyncStream<IndexChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: IndexChange.self)
        let id = UUID()
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: UUID) { subscribers[id] = nil }

    /// Applies `body` to the state, publishes, and broadcasts the changes it returned.
    @discardableResult
    public func mutate(_ body: (inout IndexState) -> [IndexChange]) -> [IndexChange] {
        let changes = body(&state)
        publish(changes)
        return changes
    }

    /// Replaces the whole state after a full sync and reports the difference as ordinary changes.
    @discardableResult
    public func replace(with new: IndexState, at time: Date = Date()) -> [IndexChange] {
        let changes = IndexState.diff(from: state, to: new)
        state = new
        let wasSynced = status.synced
        status.synced = true
        status.connected = true
        status.lastSyncTime = time
        status.lastError = nil
        publish(changes + (wasSynced ? [] : [.connection(.synced)]))
        return changes
    }

    /// Marks the index stale after a connection loss; the devices stay until the resync diff.
    public func markDisconnected(reason: String) {
        let was = status.connected || status.synced
        status.connected = false
        status.synced = false
        status.lastError = reason
        publish(was ? [.connection(.disconnected(reason: reason))] : [])
    }

    public func recordReconnect() {
        status.reconnects += 1
        publish([])
    }

    public func countEvent(source: String, event: String) {
        status.events[EventCounterKey(source: source, event: event), default: 0] += 1
        publish([])
    }

    private func publish(_ changes: [IndexChange]) {
        published.value = IndexSnapshot(state: state, status: status)
        for change in changes {
            for continuation in subscribers.values { continuation.yield(change) }
        }
    }

    /// Ends every subscriber's stream (at shutdown).
    public func finish() {
        for continuation in subscribers.values { continuation.finish() }
        subscribers = [:]
    }
}

/// A lock-protected holder for the latest snapshot.
final class SnapshotBox: Sendable {
    private let storage: Mutex<IndexSnapshot>

    init(_ initial: IndexSnapshot) { storage = Mutex(initial) }

    var value: IndexSnapshot {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
