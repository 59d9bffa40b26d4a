internal import CZlib
import NIOCore
import Synchronization

/// gzip (RFC 1952) through the system's zlib, at zlib's default level 6.
///
/// Input can be compressed in independent fragments (raw DEFLATE ended with `Z_SYNC_FLUSH`) that
/// are joined into one member later, their CRCs combined with `crc32_combine`: a block of metric
/// lines that has not changed since the last scrape is not compressed again. Fragments of about
/// 30 KB keep nearly all of `gzip -6`'s ratio on a large scrape (figures in docs/benchmarks.md).
enum Gzip {
    /// zlib's default: level 1 compresses exposition text clearly worse than `gzip -6`.
    static let level: Int32 = 6

    /// Compresses `input` into a complete gzip member, in one stream.
    static func compress(_ input: ByteBuffer) -> [ByteBuffer] {
        member([fragment(input)])
    }

    /// Compresses `input` into whole, non-final DEFLATE blocks ending on a byte boundary, which can
    /// be concatenated with other fragments.
    static func fragment(_ input: ByteBuffer) -> DeflateFragment {
        input.withUnsafeReadableBytes { source in
            let bytes = Deflater.pool.withDeflater { $0.syncFlushed(source) }
            let crc = UInt32(truncatingIfNeeded: crc32(0, source.bindMemory(to: Bytef.self).baseAddress, uInt(source.count)))
            return DeflateFragment(bytes: bytes, crc: crc, length: source.count)
        }
    }

    /// A gzip member holding `fragments` in order: a header, the fragments' own buffers, a trailer.
    static func member(_ fragments: [DeflateFragment]) -> [ByteBuffer] {
        var parts: [ByteBuffer] = []
        parts.reserveCapacity(fragments.count + 2)
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (Unix)
        parts.append(ByteBuffer(bytes: [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3]))
        var crc: uLong = 0
        var length = 0
        for fragment in fragments {
            parts.append(fragment.bytes)
            crc = crc32_combine(crc, uLong(fragment.crc), .init(fragment.length))
            length += fragment.length
        }
        // A final fixed-Huffman block holding only end-of-block: BFINAL=1, BTYPE=01, then 7 zero bits.
        var trailer = ByteBuffer(bytes: [0x03, 0x00])
        trailer.writeInteger(UInt32(truncatingIfNeeded: crc), endianness: .little)
        trailer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .little)
        parts.append(trailer)
        return parts
    }
}

/// Compressed bytes of one fragment with the CRC-32 and length of its input, for the gzip trailer.
struct DeflateFragment: Sendable {
    var bytes: ByteBuffer
    var crc: UInt32
    var length: Int
}

/// One zlib deflate stream (raw DEFLATE, 32 KiB window), reset between fragments. Streams are
/// pooled: each holds about 270 KiB of zlib state that would otherwise be allocated, cleared and
/// freed for every fragment.
private final class Deflater: @unchecked Sendable {
    // @unchecked: a deflater is used by one thread at a time, between taking it from the pool and
    // giving it back.
    private let stream: UnsafeMutablePointer<z_stream>

    init() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = mdevmon_deflateInit2(stream, Gzip.level, -15, 8)
        // Only Z_MEM_ERROR is possible with these constant arguments.
        precondition(status == Z_OK, "zlib deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Output space, reused: sized for the largest input so far up to `scratchLimit` (zlib's bound,
    /// near the input's size), so the result is copied out at its real size (about a sixth) instead
    /// of keeping that room. At most 1 MiB per pooled deflater stays allocated.
    private var scratch = ByteBuffer()
    /// Above this the scratch space is given back after use (a large `/api/v1/devices` body).
    private static let scratchLimit = 1 << 20

    /// `input` deflated and flushed with `Z_SYNC_FLUSH` (the stream ends with `00 00 FF FF`).
    func syncFlushed(_ input: UnsafeRawBufferPointer) -> ByteBuffer {
        deflateReset(stream)
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.pointee.avail_in = uInt(input.count)
        scratch.clear()
        // The bound covers a finished stream; a sync flush adds at most 5 bytes more.
        var room = Int(deflateBound(stream, uLong(input.count))) + 16
        while true {
            var status = Z_OK
            scratch.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { target in
                stream.pointee.next_out = target.bindMemory(to: Bytef.self).baseAddress
                stream.pointee.avail_out = uInt(target.count)
                status = deflate(stream, Z_SYNC_FLUSH)
                return target.count - Int(stream.pointee.avail_out)
            }
            // Z_BUF_ERROR only means no progress was possible; more room fixes that. (deflateBound
            // plus the flush's few bytes should always suffice: this is zlib's contract, not a path.)
            precondition(status == Z_OK || status == Z_BUF_ERROR, "zlib deflate failed: \(status)")
            if stream.pointee.avail_out > 0 && stream.pointee.avail_in == 0 { break }
            room *= 2
        }
        defer { if scratch.capacity > Self.scratchLimit { scratch = ByteBuffer() } }
        return ByteBuffer(bytes: scratch.readableBytesView)
    }

    static let pool = Pool()

    /// Idle deflaters; at most `limit` are kept, so memory follows concurrency only while it lasts.
    final class Pool: Sendable {
        private let idle = Mutex<[Deflater]>([])
        private let limit = 2

        func withDeflater<T>(_ body: (Deflater) -> T) -> T {
            let deflater = idle.withLock { $0.popLast() } ?? Deflater()
            defer {
                idle.withLock { if $0.count < limit { $0.append(deflater) } }
            }
            return body(deflater)
        }
    }
}
