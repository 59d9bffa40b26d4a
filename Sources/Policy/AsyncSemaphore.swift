import Synchronization

/// A counting semaphore for async code: at most `limit` holders at once, the rest wait in order.
///
/// Waiting honours cancellation: a cancelled waiter leaves the queue at once and throws
/// `CancellationError`, and a holder that was cancelled while it waited never runs its body. After
/// SIGTERM, restores queued for a slot therefore start nothing.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var free: Int
        var nextID = 0
        var waiters: [Waiter] = []
    }
    private let state: Mutex<State>

    init(_ limit: Int) {
        precondition(limit > 0)
        state = Mutex(State(free: limit))
    }

    /// How many tasks wait for a slot now (tests).
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Runs `body` holding a slot.
    /// - Throws: `CancellationError` when the task is cancelled before it got the slot (the body does not
    ///   run), or what `body` throws.
    func holding<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        // A slot handed over at the moment of cancellation: the body still does not run.
        try Task.checkCancellation()
        return try await body()
    }

    private func acquire() async throws {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                // Checked under the lock: a cancellation that ran before this must not leave a waiter behind.
                let now = state.withLock { s -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if s.free > 0 { s.free -= 1; return .success(()) }
                    s.waiters.append(Waiter(id: id, continuation: c))
                    return nil
                }
                if let now { c.resume(with: now) }
            }
        } onCancel: {
            state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).continuation
            }?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        // A waiter inherits the slot directly, so the count never goes above the limit.
        state.withLock { s -> CheckedContinuation<Void, any Error>? in
            if s.waiters.isEmpty { s.free += 1; return nil }
            return s.waiters.removeFirst().continuation
        }?.resume()
    }
}
