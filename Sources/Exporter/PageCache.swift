import Monitor
import NIOCore
import Synchronization

/// One page body (`/` or `/api/v1/devices`) kept for as long as what it shows is unchanged, plain and,
/// once asked for, gzipped: a flood of requests for an unchanged index renders and compresses it
/// once, not once per request (10,000 mdevs make 4 MB of HTML).
///
/// Renders and compressions run off Swift's cooperative pool (the event pipeline's threads); callers
/// hold a permit of the exporter's page gate, which bounds how many run at once.
final class PageCache<Key: Equatable & Sendable>: Sendable {
    private final class Entry: Sendable {
        let key: Key?
        let plain: ByteBuffer
        let gzipped: Mutex<[ByteBuffer]?> = Mutex(nil)

        init(key: Key?, plain: ByteBuffer) {
            self.key = key
            self.plain = plain
        }

        func body(gzip: Bool) -> [ByteBuffer]? {
            gzip ? gzipped.withLock { $0 } : [plain]
        }
    }

    private let entry = Mutex<Entry?>(nil)
    private let counts = Mutex((renders: 0, compressions: 0))

    /// Bodies rendered and compressed so far (tests).
    var renders: Int { counts.withLock { $0.renders } }
    var compressions: Int { counts.withLock { $0.compressions } }

    /// The body for `key`, rendered (and gzipped) only if no earlier request did.
    /// - Parameters:
    ///   - key: What the body shows; `nil` means it cannot be told apart (a snapshot not from a
    ///     `DeviceIndex`), so the body is rendered for this request alone.
    ///   - render: Makes the plain body; runs on a thread of its own.
    /// - Returns: The body's buffers, in order.
    func body(key: Key?, gzip: Bool, render: @escaping @Sendable () -> ByteBuffer) async -> [ByteBuffer] {
        let entry: Entry
        if let key, let found = cached(key) {
            entry = found
        } else {
            let plain = await run(render)
            counts.withLock { $0.renders += 1 }
            entry = Entry(key: key, plain: plain)
            if key != nil { self.entry.withLock { $0 = entry } }
        }
        if let ready = entry.body(gzip: gzip) { return ready }
        let plain = entry.plain
        let compressed = await run { Gzip.compress(plain) }
        counts.withLock { $0.compressions += 1 }
        entry.gzipped.withLock { $0 = compressed }
        return compressed
    }

    private func cached(_ key: Key) -> Entry? {
        entry.withLock { $0.flatMap { $0.key == key ? $0 : nil } }
    }

    /// Renders and compressions, off the cooperative pool; the gate bounds how many run at once.
    private func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await Blocking.perform(body)
    }
}
