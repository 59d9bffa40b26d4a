import CMalloc
import Glibc

/// Process-wide settings applied once at start-up, before any thread starts.
enum ProcessSetup {
    /// systemd starts services with a soft open-files limit of 1024 (for `select()` users) and a hard
    /// limit far above it. mdevmon uses epoll, so, like Go programs, it lifts the soft limit to the
    /// hard one: a thousand idle or slow HTTP clients must not make `accept` fail for Prometheus.
    /// - Returns: the limits before and after, when it changed them.
    @discardableResult
    static func raiseOpenFilesLimit() -> (from: UInt, to: UInt)? {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
        let from = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else { return nil }
        return (UInt(from), UInt(limit.rlim_cur))
    }

    /// glibc raises its mmap threshold after a large block is freed (up to 32 MiB), so the multi-MiB
    /// buffers a 10,000-device scrape renders then come from the heap and stay there once freed. A
    /// fixed 1 MiB threshold keeps them mmap'd and returned at once (10,000 mdevs, 64 concurrent
    /// scrapes: 25–30 MiB anonymous instead of 42–53). Fixing it also fixes the trim threshold, which
    /// at its 128 KiB default would shrink and regrow the heap around zlib's ~270 KiB deflate state on
    /// every gzip scrape (6× fewer gzip scrapes/s, measured); 8 MiB keeps that memory in place.
    static func returnLargeBuffersToTheSystem() {
        _ = mallopt(mdevmon_M_MMAP_THRESHOLD, 1024 * 1024)
        _ = mallopt(mdevmon_M_TRIM_THRESHOLD, 8 * 1024 * 1024)
    }
}
