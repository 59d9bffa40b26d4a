public import Foundation
import Synchronization

/// The single owner of index state. Every mutation publishes a new snapshot and hands the
/// `IndexChange`s it caused to every subscriber, in order, through each one's bounded queue.
public actor DeviceIndex {
    private var state = IndexState()
    private var status: MonitorStatus
    private var subscribers: [ObjectIdentifier: WeakSubscription] = [:]
    private let published: SnapshotBox
    private var generation = 0
    private let history = ChangeHistory()

    public init(uri: String) {
        status = MonitorStatus(uri: uri)
        published = SnapshotBox(IndexSnapshot(state: IndexState(), status: status, history: history))
    }

    /// The latest snapshot. Not actor-isolated: it reads a lock-protected value, so a scrape never
    /// queues behind event handling.
    public nonisolated var snapshot: IndexSnapshot { published.value }

    /// Every change from now on, through a queue of at most `capacity` changes (then one resync).
    /// Dropping the subscription unsubscribes.
    public func subscribe(capacity: Int = 4096) -> IndexSubscription {
        let subscription = IndexSubscription(capacity: capacity, startedSynced: status.lastSyncTime != nil)
        subscribers[ObjectIdentifier(subscription)] = WeakSubscription(subscription)
        return subscription
    }

    /// Applies `body` to the state, publishes, and broadcasts the changes it returned.
    /// - Parameter events: libvirt events counted since the last mutation (`mdev_events_total`).
    @discardableResult
    public func mutate(events: [EventCounterKey: Int] = [:], _ body: (inout IndexState) -> [IndexChange]) -> [IndexChange] {
        let before = state
        let changes = body(&state)
        count(events)
        publish(changes, before: before)
        return changes
    }

    /// Replaces the whole state after a full sync and reports the difference as ordinary changes.
    /// - Parameter failures: the objects that sync failed to read (`MonitorStatus.fetchFailures`).
    @discardableResult
    public func replace(with new: IndexState, at time: Date = Date(), failures: [LibvirtObject: String] = [:]) -> [IndexChange] {
        let changes = IndexState.diff(from: state, to: new)
        let before = state
        state = new
        let wasSynced = status.synced
        status.synced = true
        status.connected = true
        status.lastSyncTime = time
        status.lastError = nil
        status.fetchFailures = failures
        publish(changes + (wasSynced ? [] : [.connection(.synced)]), before: before)
        return changes
    }

    /// Marks the index stale after a connection loss; the devices stay until the resync diff.
    public func markDisconnected(reason: String) {
        let was = status.connected || status.synced
        status.connected = false
        status.synced = false
        status.lastError = reason
        publish(was ? [.connection(.disconnected(reason: reason))] : [], before: state)
    }

    /// Records a (re)connect and the host it reached, before that connection's full sync.
    public func recordConnect(host: WatchedHost, reconnect: Bool) {
        if reconnect { status.reconnects += 1 }
        status.host = host
        publish([], before: state)
    }

    /// Replaces the set of objects libvirt fails to give (after an event's fetch).
    public func recordFetchFailures(_ failures: [LibvirtObject: String]) {
        guard status.fetchFailures != failures else { return }
        status.fetchFailures = failures
        publish([], before: state)
    }

    /// Marks a libvirt call as not returning (nil: none is).
    public func recordStuckCall(_ call: String?) {
        guard status.stuckCall != call else { return }
        status.stuckCall = call
        publish([], before: state)
    }

    private func count(_ events: [EventCounterKey: Int]) {
        for (key, n) in events { status.events[key, default: 0] += n }
    }

    private func publish(_ changes: [IndexChange], before: IndexState) {
        // Every state change reports itself as changes, so a mutation without any left the state as it was.
        if changes.contains(where: { if case .connection = $0 { false } else { true } }) {
            generation += 1
            history.record(generation: generation, changes)
        }
        published.value = IndexSnapshot(state: state, status: status, generation: generation, history: history)
        guard !changes.isEmpty else { return }
        for (id, weak) in subscribers {
            guard let subscription = weak.subscription else {
                subscribers[id] = nil
                continue
            }
            subscription.publish(changes, before: before, after: state)
        }
    }

    /// Ends every subscription (at shutdown).
    public func finish() {
        for weak in subscribers.values { weak.subscription?.finish() }
        subscribers = [:]
    }
}

private struct WeakSubscription {
    weak var subscription: IndexSubscription?
    init(_ subscription: IndexSubscription) { self.subscription = subscription }
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
