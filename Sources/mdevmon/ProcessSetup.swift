import CMalloc

/// Process-wide settings applied once at start-up, before any thread starts.
enum ProcessSetup {
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
