import Dispatch
import Synchronization

/// At most `permits` holders at once, at most `waiting` waiters behind them, each waiting at most
/// `maxWait`: a bounded queue whose overflow is refused at once (the caller answers 503), never an
/// unbounded backlog of work for clients that may have left long ago.
///
/// Waiters are served first come, first served, and honour task cancellation: a cancelled waiter
/// leaves the queue at once.
final class AdmissionGate: Sendable {
    struct Limits: Hashable, Sendable {
        var permits: Int
        var waiting: Int
        var maxWait: Duration

        init(permits: Int, waiting: Int, maxWait: Duration) {
            precondition(permits > 0 && waiting >= 0 && maxWait >= .zero, "invalid admission limits")
            self.permits = permits
            self.waiting = waiting
            self.maxWait = maxWait
        }
    }

    /// Why a caller was not admitted.
    enum Refusal: Error, Hashable {
        /// `waiting` callers were already queued.
        case queueFull
        /// No permit came free within `maxWait`.
        case timedOut
        /// The client left (or the task was cancelled) while waiting.
        case clientGone
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Result<Void, Refusal>, Never>
    }

    private struct State {
        var available: Int
        /// In arrival order; at most `limits.waiting`.
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    let limits: Limits
    private let state: Mutex<State>

    init(_ limits: Limits) {
        self.limits = limits
        state = Mutex(State(available: limits.permits))
    }

    /// Holders right now (tests).
    var holders: Int { limits.permits - state.withLock { $0.available } }
    /// Waiters right now (tests).
    var waiters: Int { state.withLock { $0.waiters.count } }

    /// Runs `body` holding a permit.
    /// - Parameter departure: The request's client; a waiter whose client leaves gives up its place.
    /// - Throws: `Refusal` when not admitted, `CancellationError` when the task was cancelled while
    ///   waiting, or what `body` throws.
    func withPermit<T>(until departure: Departure? = nil, _ body: () async throws -> T) async throws -> T {
        try await enter(until: departure)
        defer { leave() }
        return try await body()
    }

    /// Takes a permit, waiting for one if the queue has room. Pair with `leave()`.
    /// - Parameter departure: The request's client; a waiter whose client leaves gives up its place,
    ///   and a client that left by the time a permit comes free does not take it.
    func enter(until departure: Departure? = nil) async throws {
        try Task.checkCancellation()
        if departure?.isGone == true { throw Refusal.clientGone }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let result: Result<Void, Refusal> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { s -> Result<Void, Refusal>? in
                    // Checked under the lock, so a cancellation either is seen here or finds the waiter queued.
                    if Task.isCancelled { return .failure(.clientGone) }
                    if s.available > 0 && s.waiters.isEmpty {
                        s.available -= 1
                        return .success(())
                    }
                    guard s.waiters.count < limits.waiting else { return .failure(.queueFull) }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                // A timer, not a task: nothing runs until it fires, and it is a no-op once the waiter is gone.
                let (seconds, attoseconds) = limits.maxWait.components
                let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                    remove(id, .failure(.timedOut))
                }
                departure?.whenGone(id: id) { [self] in remove(id, .failure(.clientGone)) }
            }
        } onCancel: {
            remove(id, .failure(.clientGone))
        }
        departure?.forget(id: id)
        if Task.isCancelled || departure?.isGone == true {
            // Granted just as the task was cancelled or the client left: the permit goes to the next one.
            if case .success = result { leave() }
            if Task.isCancelled { throw CancellationError() }
            throw Refusal.clientGone
        }
        try result.get()
    }

    /// Returns a permit, handing it to the longest waiter if there is one.
    func leave() {
        let next = state.withLock { s -> Waiter? in
            if s.waiters.isEmpty {
                s.available += 1
                precondition(s.available <= limits.permits, "AdmissionGate.leave() without enter()")
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.continuation.resume(returning: .success(()))
    }

    /// Resolves a waiter that is still queued (timed out or cancelled).
    private func remove(_ id: UInt64, _ result: Result<Void, Refusal>) {
        let waiter = state.withLock { s -> Waiter? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: result)
    }
}
