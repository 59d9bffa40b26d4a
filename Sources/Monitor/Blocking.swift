import Dispatch

/// Runs a blocking libvirt call off Swift's cooperative pool, so a slow RPC (or a connect that waits
/// on a dead host) never starves other tasks.
enum Blocking {
    private static let queue = DispatchQueue(label: "mdevmon.libvirt", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
