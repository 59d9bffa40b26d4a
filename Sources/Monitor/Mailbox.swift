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
        /// Bumped by every post, so a consumer that found nothing notices a post made before it parked.
        var posts: UInt64 = 0
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>

    public init(_ contents: Contents) { state = Mutex(State(contents: contents)) }

    /// Folds something into the contents and wakes the consumer. Ignored after `finish()`.
    public func post(_ fold: (inout Contents) -> Void) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.finished else { return nil }
            fold(&s.contents)
            s.posts &+= 1
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// No more posts; the consumer drains what is left and then gets nil.
    public func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Reads without removing (tests and metrics).
    public func peek<T>(_ read: (Contents) -> T) -> T { state.withLock { read($0.contents) } }

    /// Waits until `extract` yields an item; nil once finished and drained, or as soon as the task is
    /// cancelled (a cancelled consumer stops taking even while items wait).
    public func take<Item>(_ extract: (inout Contents) -> Item?) async -> Item? {
        while true {
            if Task.isCancelled { return nil }
            let (item, done, seen) = state.withLock { s -> (Item?, Bool, UInt64) in
                if let item = extract(&s.contents) { return (item, false, s.posts) }
                return (nil, s.finished, s.posts)
            }
            if let item { return item }
            if done { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s -> Bool in
                        // Checked under the lock: a post or cancel that ran before this must not be missed.
                        if s.finished || Task.isCancelled || s.posts != seen { return true }
                        precondition(s.waiter == nil, "Mailbox has a single consumer")
                        s.waiter = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            } onCancel: {
                state.withLock { s -> CheckedContinuation<Void, Never>? in
                    defer { s.waiter = nil }
                    return s.waiter
                }?.resume()
            }
        }
    }
}
