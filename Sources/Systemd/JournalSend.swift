internal import CSystemd
import Glibc

/// The one place that hands log entries to libsystemd's journal client.
///
/// `sd_journal_send` is variadic and cannot be imported, so entries go through `sd_journal_sendv`, which also
/// takes care of values containing newlines (it switches to the binary-safe serialization by itself).
enum JournalSocket {
    /// Sends one entry made of `FIELD=value` strings.
    ///
    /// - Returns: 0 on success, or a negative errno value as libsystemd reports it.
    static func send(_ fields: [String]) -> Int32 {
        // One contiguous buffer keeps every iovec pointer valid for the duration of the call.
        var buffer: [UInt8] = []
        buffer.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count })
        var ranges: [(offset: Int, count: Int)] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let offset = buffer.count
            buffer.append(contentsOf: field.utf8)
            ranges.append((offset, buffer.count - offset))
        }
        return buffer.withUnsafeBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress else { return -EINVAL }
            let vectors = ranges.map { range in
                iovec(iov_base: UnsafeMutableRawPointer(mutating: base + range.offset), iov_len: range.count)
            }
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }
}
