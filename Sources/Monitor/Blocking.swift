import Dispatch
import Synchronization

/// Runs blocking work off Swift's cooperative pool, so a slow libvirt RPC (or a connect that waits on a
/// dead host), a bcrypt check or a multi-megabyte render never starves other tasks. The one way out of
/// the pool: callers bound how much they send here (slots, admission gates).
package enum Blocking {
    private static let queue = DispatchQueue(label: "mdevmon.blocking", attributes: .concurrent)

    /// Work that cannot fail (a render, a bcrypt check).
    package static func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }

    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

extension Blocking {
    /// Like `run`, but returns as soon as the task is cancelled (throwing `CancellationError`): a call
    /// that blocks for long (a connect to a libvirtd that does not answer) must not hold up shutdown.
    /// The call still finishes on its own thread; `abandon` then disposes of what it returned.
    package static func runAbandoningOnCancel<T: Sendable>(
        _ body: @escaping @Sendable () throws -> T, abandon: @escaping @Sendable (T) -> Void
    ) async throws -> T {
        let waiter = Mutex<CheckedContinuation<T, any Error>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                waiter.withLock { $0 = continuation }
                // Cancelled before it began: the call is not made at all.
                if Task.isCancelled, let continuation = waiter.withLock({ $0.take() }) {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                queue.async {
                    let result = Result { try body() }
                    if let continuation = waiter.withLock({ $0.take() }) {
                        continuation.resume(with: result)
                    } else if case .success(let value) = result {
                        abandon(value)
                    }
                }
            }
        } onCancel: {
            waiter.withLock { $0.take() }?.resume(throwing: CancellationError())
        }
    }
}
