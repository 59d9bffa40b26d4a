public import Logging
import Monitor

/// The one writer of the state file. Everyone else (the change consumer, finishing restores) only
/// marks it dirty; the writer coalesces bursts and writes at most once per `delay`, and once more when
/// it is cancelled, from the index as it is then.
public final class StateWriter: Sendable {
    private let store: StateStore
    private let delay: Duration
    private let content: @Sendable () -> PersistedState?
    private let logger: Logger
    private let dirty = Mailbox(false)

    /// - Parameters:
    ///   - content: what to write now, or nil when there is nothing trustworthy to write (the index is
    ///     not synced); read at write time, so a write always carries the latest state.
    ///   - delay: how long a burst of changes is coalesced before one write.
    public init(store: StateStore, delay: Duration, logger: Logger, content: @escaping @Sendable () -> PersistedState?) {
        self.store = store
        self.delay = delay
        self.content = content
        self.logger = logger
    }

    public func markDirty() { dirty.post { $0 = true } }

    /// Writes until cancelled, then once more.
    public func run() async {
        while await dirty.take({ d -> Bool? in
            guard d else { return nil }
            d = false
            return true
        }) != nil {
            // Cancellation (shutdown) ends the wait early; the write below still happens.
            try? await Task.sleep(for: delay)
            write()
        }
        // Changes that never reached the writer (still queued at shutdown) are in the index: write it.
        write()
    }

    private func write() {
        guard let state = content() else { return }
        do {
            try store.save(state)
        } catch {
            logger.error("cannot write state file \(store.path): \(error)")
        }
    }
}
