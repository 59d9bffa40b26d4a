/// A small gzip (RFC 1952) encoder: LZ77 with hash chains and DEFLATE's fixed Huffman codes.
///
/// Nothing reachable from this package's declared products exposes zlib (NIOHTTPCompression only
/// offers a channel handler for NIOHTTP1 parts, which Hummingbird 2's pipeline does not carry), so
/// this file does the little a scrape needs: exposition text shrinks about 3× (random UUIDs) to 10×.
///
/// Input can be compressed in independent fragments that are joined into one member later, so a
/// metric family that has not changed since the last scrape is not compressed again.
enum Gzip {
    /// Compresses `input` into a complete gzip member.
    static func compress(_ input: [UInt8]) -> [UInt8] {
        member([fragment(input)])
    }

    /// Compresses `input` into whole, non-final DEFLATE blocks ending on a byte boundary (like zlib's
    /// `Z_SYNC_FLUSH`), which can be concatenated with other fragments.
    static func fragment(_ input: [UInt8]) -> DeflateFragment {
        var out = BitWriter(capacity: input.count / 3 + 16)
        if !input.isEmpty {
            out.write(0b010, count: 3)  // BFINAL=0, BTYPE=01 (fixed Huffman)
            input.withUnsafeBufferPointer { deflateFixed($0, into: &out) }
        }
        // An empty stored block aligns the stream to a byte boundary.
        out.write(0b000, count: 3)
        out.alignToByte()
        out.bytes.append(contentsOf: [0x00, 0x00, 0xFF, 0xFF])
        return DeflateFragment(bytes: out.bytes, crc: CRC32.checksum(input), length: input.count)
    }

    /// A gzip member holding `fragments` in order.
    static func member(_ fragments: [DeflateFragment]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fragments.reduce(20) { $0 + $1.bytes.count })
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (Unix)
        out.append(contentsOf: [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])
        var crc: UInt32 = 0
        var length = 0
        for fragment in fragments {
            out.append(contentsOf: fragment.bytes)
            crc = CRC32.combine(crc, fragment.crc, length: fragment.length)
            length += fragment.length
        }
        // A final fixed-Huffman block holding only end-of-block: BFINAL=1, BTYPE=01, then 7 zero bits.
        out.append(contentsOf: [0x03, 0x00])
        let size = UInt32(truncatingIfNeeded: length)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> shift)) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: size >> shift)) }
        return out
    }

    private static let windowSize = 1 << 15
    private static let hashBits = 15
    private static let minMatch = 3
    private static let maxMatch = 258
    /// How many earlier positions with the same hash to try; exposition text finds long matches fast.
    private static let maxChain = 24
    /// A match this long is good enough to stop searching.
    private static let niceMatch = 128

    /// The symbols of one fixed-Huffman block (RFC 1951 §3.2.6) after its header, end-of-block included.
    private static func deflateFixed(_ input: UnsafeBufferPointer<UInt8>, into out: inout BitWriter) {
        let n = input.count
        guard n > 0, let base = input.baseAddress else {
            out.write(FixedCodes.literal[256], count: Int(FixedCodes.literalLength[256]))
            return
        }
        var head = [Int32](repeating: -1, count: 1 << hashBits)
        var prev = [Int32](repeating: -1, count: windowSize)
        let literal = FixedCodes.literal, literalLength = FixedCodes.literalLength
        let lengthCode = FixedCodes.lengthCode, lengthCodeBits = FixedCodes.lengthCodeBits

        head.withUnsafeMutableBufferPointer { head in
            prev.withUnsafeMutableBufferPointer { prev in
                @inline(__always) func hash(_ i: Int) -> Int {
                    let v = UInt32(base[i]) | UInt32(base[i + 1]) << 8 | UInt32(base[i + 2]) << 16
                    return Int((v &* 2_654_435_761) >> UInt32(32 - hashBits))
                }
                @inline(__always) func insert(_ i: Int, _ h: Int) {
                    prev[i & (windowSize - 1)] = head[h]
                    head[h] = Int32(i)
                }

                var i = 0
                while i < n {
                    var bestLength = 0, bestDistance = 0
                    if i + minMatch <= n {
                        let h = hash(i)
                        let limit = min(maxMatch, n - i)
                        var candidate = Int(head[h])
                        var chain = maxChain
                        while candidate >= 0, chain > 0, i - candidate < windowSize {
                            // Cheap reject: the byte that would extend the best match must match.
                            if base[candidate + bestLength] == base[i + bestLength] || bestLength == 0 {
                                var length = 0
                                while length < limit, base[candidate + length] == base[i + length] { length += 1 }
                                if length > bestLength {
                                    bestLength = length
                                    bestDistance = i - candidate
                                    if length >= min(niceMatch, limit) { break }
                                }
                            }
                            let next = Int(prev[candidate & (windowSize - 1)])
                            // A slot overwritten by a newer position ends the chain.
                            if next >= candidate { break }
                            candidate = next
                            chain -= 1
                        }
                        insert(i, h)
                    }
                    if bestLength >= minMatch {
                        out.write(lengthCode[bestLength], count: Int(lengthCodeBits[bestLength]))
                        writeDistance(bestDistance, into: &out)
                        let end = i + bestLength
                        i += 1
                        while i < end {
                            if i + minMatch <= n { insert(i, hash(i)) }
                            i += 1
                        }
                    } else {
                        let byte = Int(base[i])
                        out.write(literal[byte], count: Int(literalLength[byte]))
                        i += 1
                    }
                }
            }
        }
        out.write(literal[256], count: Int(literalLength[256]))
    }

    /// Distance codes 0–29 with their extra bits; fixed distance codes are 5 bits.
    @inline(__always)
    private static func writeDistance(_ distance: Int, into out: inout BitWriter) {
        let d = distance - 1
        if d < 4 {
            out.write(FixedCodes.reversed(UInt32(d), bits: 5), count: 5)
            return
        }
        let top = Int.bitWidth - 1 - d.leadingZeroBitCount  // floor(log2(d)), ≥ 2
        let extraBits = top - 1
        let code = 2 * top + ((d >> extraBits) & 1)
        let extra = UInt32(d & ((1 << extraBits) - 1))
        out.write(FixedCodes.reversed(UInt32(code), bits: 5) | extra << 5, count: 5 + extraBits)
    }

    /// Writes bit fields least significant bit first, as DEFLATE packs them.
    private struct BitWriter {
        var bytes: [UInt8]
        private var buffer: UInt64 = 0
        private var count = 0

        init(capacity: Int) {
            bytes = []
            bytes.reserveCapacity(capacity)
        }

        @inline(__always)
        mutating func write(_ bits: UInt32, count n: Int) {
            buffer |= UInt64(bits) << UInt64(count)
            count += n
            if count >= 32 {
                bytes.append(UInt8(truncatingIfNeeded: buffer))
                bytes.append(UInt8(truncatingIfNeeded: buffer >> 8))
                bytes.append(UInt8(truncatingIfNeeded: buffer >> 16))
                bytes.append(UInt8(truncatingIfNeeded: buffer >> 24))
                buffer >>= 32
                count -= 32
            }
        }

        mutating func alignToByte() {
            while count > 0 {
                bytes.append(UInt8(truncatingIfNeeded: buffer))
                buffer >>= 8
                count = max(0, count - 8)
            }
            buffer = 0
        }
    }

    /// The fixed literal/length code (RFC 1951 §3.2.6), bit-reversed for LSB-first output.
    private enum FixedCodes {
        static let literal: [UInt32] = (0..<288).map { symbol in
            switch symbol {
            case 0...143: reversed(UInt32(0x30 + symbol), bits: 8)
            case 144...255: reversed(UInt32(0x190 + symbol - 144), bits: 9)
            case 256...279: reversed(UInt32(symbol - 256), bits: 7)
            default: reversed(UInt32(0xC0 + symbol - 280), bits: 8)
            }
        }
        static let literalLength: [UInt8] = (0..<288).map { symbol in
            switch symbol {
            case 0...143: 8
            case 144...255: 9
            case 256...279: 7
            default: 8
            }
        }

        /// For each match length 3–258: the length symbol's code followed by its extra bits.
        static let (lengthCode, lengthCodeBits): ([UInt32], [UInt8]) = {
            var codes = [UInt32](repeating: 0, count: 259), bits = [UInt8](repeating: 0, count: 259)
            for length in 3...258 {
                let l = length - 3
                let symbol: Int, extraBits: Int, extra: Int
                if l < 8 {
                    (symbol, extraBits, extra) = (257 + l, 0, 0)
                } else if length == 258 {
                    (symbol, extraBits, extra) = (285, 0, 0)
                } else {
                    let top = Int.bitWidth - 1 - l.leadingZeroBitCount  // ≥ 3
                    extraBits = top - 2
                    symbol = 257 + 4 * (top - 1) + ((l >> extraBits) & 3)
                    extra = l & ((1 << extraBits) - 1)
                }
                let codeBits = Int(literalLength[symbol])
                codes[length] = literal[symbol] | UInt32(extra) << UInt32(codeBits)
                bits[length] = UInt8(codeBits + extraBits)
            }
            return (codes, bits)
        }()

        static func reversed(_ code: UInt32, bits: Int) -> UInt32 {
            code.bitReversed >> UInt32(32 - bits)
        }
    }
}

/// Compressed bytes of one piece of input, with what gzip's trailer needs to know about it.
struct DeflateFragment: Sendable {
    var bytes: [UInt8]
    var crc: UInt32
    var length: Int
}

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer needs.
enum CRC32 {
    private static let polynomial: UInt32 = 0xEDB8_8320

    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? polynomial ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        table.withUnsafeBufferPointer { table in
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            return crc ^ 0xFFFF_FFFF
        }
    }

    /// The CRC of A followed by B from the CRCs of A and B and B's length (zlib's `crc32_combine`).
    static func combine(_ crcA: UInt32, _ crcB: UInt32, length lengthB: Int) -> UInt32 {
        multiply(xToThe8n(lengthB), crcA) ^ crcB
    }

    /// a(x)·b(x) modulo the CRC polynomial, in the reflected bit order CRC-32 uses.
    private static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var m: UInt32 = 1 << 31, b = b, product: UInt32 = 0
        while true {
            if a & m != 0 {
                product ^= b
                if a & (m - 1) == 0 { break }
            }
            m >>= 1
            b = b & 1 != 0 ? (b >> 1) ^ polynomial : b >> 1
        }
        return product
    }

    /// x^(2^k) modulo the polynomial, for k = 0…31.
    private static let powers: [UInt32] = {
        var p: UInt32 = 1 << 30  // x^1
        var table = [p]
        for _ in 1..<32 {
            p = multiply(p, p)
            table.append(p)
        }
        return table
    }()

    /// x^(8·n) modulo the polynomial: appending n zero bytes.
    private static func xToThe8n(_ n: Int) -> UInt32 {
        var p: UInt32 = 1 << 31  // x^0
        var n = n, k = 3
        while n > 0 {
            if n & 1 != 0 { p = multiply(powers[k & 31], p) }
            n >>= 1
            k += 1
        }
        return p
    }
}

private extension UInt32 {
    var bitReversed: UInt32 {
        var v = self
        v = ((v >> 1) & 0x5555_5555) | ((v & 0x5555_5555) << 1)
        v = ((v >> 2) & 0x3333_3333) | ((v & 0x3333_3333) << 2)
        v = ((v >> 4) & 0x0F0F_0F0F) | ((v & 0x0F0F_0F0F) << 4)
        v = ((v >> 8) & 0x00FF_00FF) | ((v & 0x00FF_00FF) << 8)
        return (v >> 16) | (v << 16)
    }
}
