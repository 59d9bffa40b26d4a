import Synchronization

/// Where parked restores wait for what they wait for: a parent device to appear, any new device (a
/// restore whose parent is not known yet), or a configuration reload (a dry run or a device no longer
/// owned). Signals come from the change consumer and from reloads; nothing polls.
///
/// A restore registers before it checks, so a signal between its check and its wait is not missed.
/// Waiting honours cancellation: a cancelled waiter returns at once.
final class RestoreWakeups: Sendable {
    enum Reason: Hashable, Sendable {
        case parent(String)
        /// A restore whose parent is not known yet: woken by any new parent or device.
        case anyParent
        case reload
    }

    struct Token: Hashable, Sendable { let id: Int }

    private struct Waiter {
        let reason: Reason
        var signalled = false
        var continuation: CheckedContinuation<Void, Never>?
    }
    private struct State {
        var next = 0
        var waiting: [Int: Waiter] = [:]
    }
    private let state = Mutex(State())

    func register(_ reason: Reason) -> Token {
        state.withLock { s in
            s.next += 1
            s.waiting[s.next] = Waiter(reason: reason)
            return Token(id: s.next)
        }
    }

    /// Withdraws a registration that will not be waited on.
    func cancel(_ token: Token) { _ = state.withLock { $0.waiting.removeValue(forKey: token.id) } }

    /// Returns once the registration was signalled (before or during the wait) or the task is cancelled.
    func wait(_ token: Token) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
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

    /// A parent appeared: wakes its waiters and those waiting for any parent.
    func signal(parent: String) { wake { $0 == .parent(parent) || $0 == .anyParent } }
    /// A device appeared: wakes the waiters for a parent not known yet.
    func signalAnyParent() { wake { $0 == .anyParent } }
    /// The configuration was reloaded.
    func signalReload() { wake { $0 == .reload } }
    /// The index was resynced: everything may have changed.
    func signalAll() { wake { _ in true } }

    /// How many registrations wait or are registered now (tests).
    var count: Int { state.withLock { $0.waiting.count } }

    private func wake(_ matches: (Reason) -> Bool) {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            var out: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in s.waiting where matches(waiter.reason) {
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
}
