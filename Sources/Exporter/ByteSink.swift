/// A growable byte buffer written through raw pointers: appending a few bytes costs a bounds check
/// and a `memcpy`, without `Array`'s uniqueness checks. Scrapes append several hundred thousand
/// small pieces, so this is where rendering time goes.
struct ByteSink: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        new.initialize(from: base, count: count)
        base.deallocate()
        base = new
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: String) {
        // Small strings live inline and have no contiguous storage to borrow.
        if text.utf8.withContiguousStorageIfAvailable({ append($0) }) == nil {
            for byte in text.utf8 { append(byte) }
        }
    }

    /// Appends a label value, escaping backslash, double quote and newline as the text format requires.
    mutating func appendEscaped(_ value: String) {
        let borrowed: Void? = value.utf8.withContiguousStorageIfAvailable { bytes in
            if Self.containsSpecial(bytes) {
                for byte in bytes { appendEscaped(byte) }
            } else {
                append(bytes)
            }
        }
        if borrowed == nil {
            for byte in value.utf8 { appendEscaped(byte) }
        }
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\n")
    }

    /// Whether any byte needs escaping, checking eight bytes per step (label values are scanned by
    /// the megabyte on large hosts).
    private static func containsSpecial(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= bytes.count {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if hasByte(word, UInt8(ascii: "\\")) || hasByte(word, UInt8(ascii: "\"")) || hasByte(word, UInt8(ascii: "\n")) {
                return true
            }
            i += 8
        }
        while i < bytes.count {
            if needsEscape(base[i]) { return true }
            i += 1
        }
        return false
    }

    /// The classic "has zero byte" test applied to `word XOR byte×8`: exact, no false positives overall.
    @inline(__always)
    private static func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
        let x = word ^ (0x0101_0101_0101_0101 &* UInt64(byte))
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080 != 0
    }

    @inline(__always)
    private mutating func appendEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\\"): append(UInt8(ascii: "\\")); append(UInt8(ascii: "\\"))
        case UInt8(ascii: "\""): append(UInt8(ascii: "\\")); append(UInt8(ascii: "\""))
        case UInt8(ascii: "\n"): append(UInt8(ascii: "\\")); append(UInt8(ascii: "n"))
        default: append(byte)
        }
    }

    /// Appends an integer in decimal.
    mutating func append(decimal value: Int) {
        if value >= 0, value < 10 {
            append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 0
        var rest = magnitude
        repeat {
            digits += 1
            rest /= 10
        } while rest > 0
        reserve(digits)
        var i = count + digits
        repeat {
            i -= 1
            base[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        count += digits
    }

    /// Compares `self[a]` and `self[b]` bytewise.
    func compare(_ a: Range<Int>, _ b: Range<Int>) -> Int {
        let n = min(a.count, b.count)
        let result = memcmpBytes(base + a.lowerBound, base + b.lowerBound, n)
        if result != 0 { return result }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// Up to 8 bytes from `offset` as a big-endian integer, zero-padded: comparing these compares bytes.
    func prefix64(at offset: Int, limit: Int) -> UInt64 {
        var key: UInt64 = 0
        for i in 0..<8 {
            key <<= 8
            if offset + i < limit { key |= UInt64(base[offset + i]) }
        }
        return key
    }

    /// The address of byte `offset`; valid while the sink lives and does not grow.
    func pointer(at offset: Int) -> UnsafePointer<UInt8> {
        precondition(offset >= 0 && offset <= count)
        return UnsafePointer(base + offset)
    }

    private func memcmpBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Int {
        for i in 0..<n where a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        return 0
    }
}
