import Synchronization

/// A single-consumer queue whose contents are a value the producers fold into, so the queue decides
/// what to keep (coalesce per key, overflow to a resync) instead of buffering without bound.
///
/// Producers call `post` from any thread (libvirt's event loop, the index actor); the one consumer
/// awaits `take`, which hands out what `extract` removes from the contents.
public final class Mailbox<Contents: Sendable>: Sendable {
    private struct State: Sendable {
        var contents: Contents
        var finished = false
    }

    private let state: Mutex<State>
    private let consumer = AsyncWaiters<Unkeyed>()

    public init(_ contents: Contents) { state = Mutex(State(contents: contents)) }

    /// Folds something into the contents and wakes the consumer. Ignored after `finish()`.
    public func post(_ fold: (inout Contents) -> Void) {
        let posted = state.withLock { s -> Bool in
            guard !s.finished else { return false }
            fold(&s.contents)
            return true
        }
        if posted { consumer.signalAll() }
    }

    /// No more posts; the consumer drains what is left and then gets nil.
    public func finish() {
        state.withLock { $0.finished = true }
        consumer.signalAll()
    }

    /// Reads without removing (tests and metrics).
    public func peek<T>(_ read: (Contents) -> T) -> T { state.withLock { read($0.contents) } }

    /// Waits until `extract` yields an item; nil once finished and drained, or as soon as the task is
    /// cancelled (a cancelled consumer stops taking even while items wait).
    public func take<Item>(_ extract: (inout Contents) -> Item?) async -> Item? {
        while !Task.isCancelled {
            // Registered before looking: a post between the look and the wait is not missed.
            let token = consumer.register()
            let (item, done) = state.withLock { s -> (Item?, Bool) in
                if let item = extract(&s.contents) { return (item, false) }
                return (nil, s.finished)
            }
            if item != nil || done {
                consumer.cancel(token)
                return item
            }
            await consumer.wait(token)
        }
        return nil
    }
}
