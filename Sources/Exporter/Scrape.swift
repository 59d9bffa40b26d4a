import Glibc
public import NIOCore
import Synchronization

/// A piece of exposition text: a family's header, a block of its lines, or a whole small family.
/// Immutable; its gzip fragment is made on first use and shared by every scrape that holds it.
/// The text is a `ByteBuffer`, so a response writes the cached chunks themselves (one `writev`),
/// never a copy of the whole body.
final class Chunk: Sendable {
    let buffer: ByteBuffer
    /// Whether `MetricsCache` keeps this chunk for later scrapes, so its fragment is worth keeping too.
    let reused: Bool
    private let compressed = Mutex<DeflateFragment?>(nil)

    init(_ bytes: some Collection<UInt8>, reused: Bool) {
        buffer = ByteBuffer(bytes: bytes)
        self.reused = reused
    }

    var count: Int { buffer.readableBytes }

    /// Whether the text is `bytes`.
    func holds(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count == count else { return false }
        if count == 0 { return true }
        return buffer.withUnsafeReadableBytes { mine in
            bytes.withUnsafeBytes { theirs in memcmp(mine.baseAddress!, theirs.baseAddress!, count) == 0 }
        }
    }

    /// This chunk's DEFLATE fragment, compressing it if no scrape has yet.
    func fragment() -> DeflateFragment {
        if let done = compressed.withLock({ $0 }) { return done }
        // Compress outside the lock; two racing scrapes may both compress, with the same result.
        let made = Gzip.fragment(buffer)
        compressed.withLock { $0 = made }
        return made
    }
}

/// A whole scrape: chunks in exposition order (families sorted by name), served as plain text or as
/// gzip assembled from the chunks' (mostly cached) fragments.
public struct Scrape: Sendable {
    let chunks: [Chunk]

    /// - Parameter families: Each family's name and its text in order; names must be unique.
    init(families: [(name: String, chunks: [Chunk])]) {
        let sorted = families.sorted { $0.name < $1.name }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            precondition(a.name != b.name, "metric family \(a.name) written twice")
        }
        chunks = sorted.flatMap(\.chunks)
    }

    /// Size of the plain text.
    public var byteCount: Int { chunks.reduce(0) { $0 + $1.count } }

    /// The plain text, as the chunks' own buffers (a response writes them without copying).
    public var buffers: [ByteBuffer] { chunks.lazy.filter { $0.count > 0 }.map(\.buffer) }

    /// The plain text in one array (tests, the benchmark).
    public var bytes: [UInt8] { Self.joined(buffers) }

    /// Up to this size a body is compressed whole, in one stream: a small host's families are a few KB
    /// each and repeat the same UUIDs, which one 32 KiB window finds and separate fragments do not, so
    /// fragments would fall well short of `gzip -6`'s ratio. Compressing a body this small whole is cheap.
    static let wholeBodyLimit = 256 * 1024

    /// gzip of `bytes`, as buffers to write in order: a small body is compressed whole; otherwise
    /// chunks made for this scrape alone are compressed together, in runs, and cached chunks bring
    /// their own (shared, not copied) fragment.
    public func gzippedBuffers() -> [ByteBuffer] {
        if byteCount <= Self.wholeBodyLimit {
            var whole = ByteBuffer()
            whole.reserveCapacity(byteCount)
            for buffer in buffers { whole.writeImmutableBuffer(buffer) }
            return Gzip.compress(whole)
        }
        var fragments: [DeflateFragment] = []
        var run = ByteBuffer()
        for chunk in chunks {
            if chunk.reused {
                if run.readableBytes > 0 { fragments.append(Gzip.fragment(run)) }
                run.clear()
                fragments.append(chunk.fragment())
            } else {
                run.writeImmutableBuffer(chunk.buffer)
            }
        }
        if run.readableBytes > 0 { fragments.append(Gzip.fragment(run)) }
        return Gzip.member(fragments)
    }

    /// The gzip body in one array (tests, the benchmark).
    public func gzipped() -> [UInt8] { Self.joined(gzippedBuffers()) }

    /// `buffers` in one array.
    static func joined(_ buffers: [ByteBuffer]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(buffers.reduce(0) { $0 + $1.readableBytes })
        for buffer in buffers { buffer.withUnsafeReadableBytes { out.append(contentsOf: $0) } }
        return out
    }
}
