import Synchronization

/// A piece of exposition text: a family's header, a block of its lines, or a whole small family.
/// Immutable; its gzip fragment is made on first use and shared by every scrape that holds it.
final class Chunk: Sendable {
    let bytes: [UInt8]
    /// Whether `MetricsCache` keeps this chunk for later scrapes, so its fragment is worth keeping too.
    let reused: Bool
    private let compressed = Mutex<DeflateFragment?>(nil)

    init(_ bytes: [UInt8], reused: Bool) {
        self.bytes = bytes
        self.reused = reused
    }

    /// This chunk's DEFLATE fragment, compressing it if no scrape has yet.
    func fragment() -> DeflateFragment {
        if let done = compressed.withLock({ $0 }) { return done }
        // Compress outside the lock; two racing scrapes may both compress, with the same result.
        let made = Gzip.fragment(bytes)
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
    public var byteCount: Int { chunks.reduce(0) { $0 + $1.bytes.count } }

    /// The plain text.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for chunk in chunks { out.append(contentsOf: chunk.bytes) }
        return out
    }

    /// Up to this size a body is compressed whole, in one stream: a small host's families are a few KB
    /// each and repeat the same UUIDs, which one 32 KiB window finds and separate fragments do not (100
    /// mdevs: 57 % of `gzip -6`'s ratio in fragments). Whole, it costs about 1 ms at this size.
    static let wholeBodyLimit = 256 * 1024

    /// gzip of `bytes`. A small body is compressed whole; otherwise chunks made for this scrape alone are
    /// compressed together, in runs, and cached chunks bring their own fragment.
    public func gzipped() -> [UInt8] {
        if byteCount <= Self.wholeBodyLimit { return Gzip.compress(bytes) }
        var fragments: [DeflateFragment] = []
        var run: [UInt8] = []
        for chunk in chunks {
            if chunk.reused {
                if !run.isEmpty { fragments.append(Gzip.fragment(run)) }
                run.removeAll(keepingCapacity: true)
                fragments.append(chunk.fragment())
            } else {
                run.append(contentsOf: chunk.bytes)
            }
        }
        if !run.isEmpty { fragments.append(Gzip.fragment(run)) }
        return Gzip.member(fragments)
    }
}
