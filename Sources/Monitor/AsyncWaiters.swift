import Synchronization

/// The one way a task here parks until something happens: **register, check, wait**. A task registers
/// under a key, checks whatever it waits for, and only then waits; a signal between the check and the
/// wait is kept, so it is never missed. Waiting honours cancellation: a cancelled waiter returns at once
/// and leaves nothing behind. Signals wake the waiters whose key matches (and mark those registered but
/// not waiting yet). Nothing polls.
///
/// Used by the mailbox's consumer, `Latch` (first sync, first evaluation) and the restores' wake-ups. (The restores'
/// `AsyncSemaphore` keeps its own queue: a slot is handed to the oldest waiter under the same lock as the
/// count, which a separate primitive could not do without losing a hand-off to a cancellation.)
package final class AsyncWaiters<Key: Hashable & Sendable>: Sendable {
    package struct Token: Hashable, Sendable { let id: Int }

    private struct Waiter {
        let key: Key
        var signalled = false
        var continuation: CheckedContinuation<Void, Never>?
    }
    private struct State {
        var next = 0
        var waiting: [Int: Waiter] = [:]
    }
    private let state = Mutex(State())

    package init() {}

    /// Registers before the caller checks its condition.
    package func register(_ key: Key) -> Token {
        state.withLock { s in
            s.next += 1
            s.waiting[s.next] = Waiter(key: key)
            return Token(id: s.next)
        }
    }

    /// Withdraws a registration that will not be waited on (the condition already held).
    package func cancel(_ token: Token) { _ = state.withLock { $0.waiting.removeValue(forKey: token.id) } }

    /// Returns once the registration was signalled (before or during the wait) or the task is cancelled;
    /// either way the registration is gone afterwards.
    package func wait(_ token: Token) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    // Checked under the lock: a signal or a cancellation that ran before this is not missed.
                    guard var waiter = s.waiting[token.id], !waiter.signalled, !Task.isCancelled else {
                        s.waiting[token.id] = nil
                        return true
                    }
                    waiter.continuation = c
                    s.waiting[token.id] = waiter
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: token.id)?.continuation }?.resume()
        }
    }

    /// Wakes (or marks) every registration whose key matches.
    package func signal(where matches: (Key) -> Bool) {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            var out: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in s.waiting where matches(waiter.key) {
                if let c = waiter.continuation {
                    s.waiting[id] = nil
                    out.append(c)
                } else {
                    s.waiting[id]?.signalled = true
                }
            }
            return out
        }
        for c in woken { c.resume() }
    }

    package func signalAll() { signal { _ in true } }

    /// Registrations not yet woken or withdrawn (tests).
    package var count: Int { state.withLock { $0.waiting.count } }
}

/// The key of waiters that wait for one thing only.
package enum Unkeyed: Hashable, Sendable { case waiter }

extension AsyncWaiters where Key == Unkeyed {
    package func register() -> Token { register(.waiter) }
}
