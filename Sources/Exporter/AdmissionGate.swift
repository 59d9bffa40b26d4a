import Dispatch
import Synchronization

/// At most `permits` holders at once, at most `waiting` waiters behind them, each waiting at most
/// `maxWait`: a bounded queue whose overflow is refused at once (the caller answers 503), never an
/// unbounded backlog of work for clients that may have left long ago.
///
/// Waiters are served first come, first served, and honour task cancellation: a cancelled waiter
/// leaves the queue at once. A holder that keeps its permit longer than `maxHold` (a client that stops
/// reading a response) loses it to the next caller that finds none free; a permit given back before
/// `minHold` is free again only then, which bounds admissions to `permits / minHold` per second.
final class AdmissionGate: Sendable {
    struct Limits: Hashable, Sendable {
        var permits: Int
        var waiting: Int
        var maxWait: Duration
        /// How long a permit may be held before it can be taken back; `nil`: as long as its holder wants.
        var maxHold: Duration?
        /// How long a permit stays taken at least, however soon it is given back.
        var minHold: Duration?

        init(permits: Int, waiting: Int, maxWait: Duration, maxHold: Duration? = nil, minHold: Duration? = nil) {
            precondition(permits > 0 && waiting >= 0 && maxWait >= .zero, "invalid admission limits")
            self.permits = permits
            self.waiting = waiting
            self.maxWait = maxWait
            self.maxHold = maxHold
            self.minHold = minHold
        }
    }

    /// A held permit; give it back with `leave(_:)`.
    struct Lease: Hashable, Sendable {
        fileprivate let id: UInt64
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
        let continuation: CheckedContinuation<Result<Lease, Refusal>, Never>
    }

    private struct State {
        /// Holders by lease, with when they took it.
        var leases: [UInt64: ContinuousClock.Instant] = [:]
        /// In arrival order; at most `limits.waiting`.
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0

        mutating func newLease() -> Lease {
            nextID += 1
            leases[nextID] = .now
            return Lease(id: nextID)
        }
    }

    let limits: Limits
    private let state = Mutex(State())

    init(_ limits: Limits) {
        self.limits = limits
    }

    /// Holders right now (tests).
    var holders: Int { state.withLock { $0.leases.count } }
    /// Waiters right now (tests).
    var waiters: Int { state.withLock { $0.waiters.count } }

    /// Runs `body` holding a permit.
    /// - Parameter departure: The request's client; a waiter whose client leaves gives up its place.
    /// - Throws: `Refusal` when not admitted, `CancellationError` when the task was cancelled while
    ///   waiting, or what `body` throws.
    func withPermit<T>(until departure: Departure? = nil, _ body: () async throws -> T) async throws -> T {
        let lease = try await enter(until: departure)
        defer { leave(lease) }
        return try await body()
    }

    /// Takes a permit, waiting for one if the queue has room. Give it back with `leave(_:)`.
    /// - Parameter departure: The request's client; a waiter whose client leaves gives up its place,
    ///   and a client that left by the time a permit comes free does not take it.
    func enter(until departure: Departure? = nil) async throws -> Lease {
        try Task.checkCancellation()
        if departure?.isGone == true { throw Refusal.clientGone }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let result: Result<Lease, Refusal> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { s -> Result<Lease, Refusal>? in
                    // Checked under the lock, so a cancellation either is seen here or finds the waiter queued.
                    if Task.isCancelled { return .failure(.clientGone) }
                    if s.waiters.isEmpty && hasRoom(&s) { return .success(s.newLease()) }
                    guard s.waiters.count < limits.waiting else { return .failure(.queueFull) }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                // A timer, not a task: nothing runs until it fires, and it is a no-op once the waiter is gone.
                Self.after(limits.maxWait) { [self] in timeOut(id) }
                departure?.whenGone(id: id) { [self] in remove(id) }
            }
        } onCancel: {
            remove(id)
        }
        departure?.forget(id: id)
        if Task.isCancelled || departure?.isGone == true {
            // Granted just as the task was cancelled or the client left: the permit goes to the next one.
            if case .success(let lease) = result { leave(lease) }
            if Task.isCancelled { throw CancellationError() }
            throw Refusal.clientGone
        }
        return try result.get()
    }

    /// Returns a permit (at the end of its `minHold`), handing it to the longest waiter if there is one.
    /// A lease already taken back (held past `maxHold`) is ignored.
    func leave(_ lease: Lease) {
        if let minHold = limits.minHold, let taken = state.withLock({ $0.leases[lease.id] }) {
            let early = minHold - (ContinuousClock.now - taken)
            if early > .zero {
                Self.after(early) { [self] in release(lease) }
                return
            }
        }
        release(lease)
    }

    private func release(_ lease: Lease) {
        let next = state.withLock { s -> (Waiter, Lease)? in
            guard s.leases.removeValue(forKey: lease.id) != nil, !s.waiters.isEmpty else { return nil }
            return (s.waiters.removeFirst(), s.newLease())
        }
        if let (waiter, lease) = next { waiter.continuation.resume(returning: .success(lease)) }
    }

    private static func after(_ delay: Duration, _ body: @escaping @Sendable () -> Void) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds), execute: body)
    }

    /// Whether a permit is free, after taking back those held past `maxHold`.
    private func hasRoom(_ s: inout State) -> Bool {
        if s.leases.count >= limits.permits, let maxHold = limits.maxHold {
            let now = ContinuousClock.now
            s.leases = s.leases.filter { now - $0.value < maxHold }
        }
        return s.leases.count < limits.permits
    }

    /// A waiter's `maxWait` is over: it gets a permit held too long by someone else, or gives up.
    private func timeOut(_ id: UInt64) {
        let resolved = state.withLock { s -> (Waiter, Result<Lease, Refusal>)? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = s.waiters.remove(at: index)
            return (waiter, hasRoom(&s) ? .success(s.newLease()) : .failure(.timedOut))
        }
        if let (waiter, result) = resolved { waiter.continuation.resume(returning: result) }
    }

    /// Resolves a waiter that is still queued (cancelled, or its client left).
    private func remove(_ id: UInt64) {
        let waiter = state.withLock { s -> Waiter? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: .failure(.clientGone))
    }
}
