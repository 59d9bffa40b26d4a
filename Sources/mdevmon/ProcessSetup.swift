import CMalloc
import Glibc

/// Process-wide settings applied once at start-up, before any thread starts.
enum ProcessSetup {
    /// libvirt writes RPCs to its socket with write(2): a libvirtd that dies mid-write raises SIGPIPE,
    /// whose default action kills the process, and libvirt leaves ignoring it to the application.
    /// systemd ignores it for services, but not for `mdevmon run` in a shell (the restart soak's test
    /// process died of it at round 18). Only the daemon: `list` and `doctor` piped into `head` should
    /// end quietly, as any command-line tool does.
    static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// glibc raises its mmap threshold after a large block is freed (up to 32 MiB), so the multi-MiB
    /// buffers of a 10,000-device full sync (and a cold render) then come from the heap and stay there
    /// once freed. A fixed 1 MiB threshold keeps them mmap'd, so they go back to the system at once.
    /// Fixing it also fixes the trim threshold, which at its 128 KiB default would shrink and regrow
    /// the heap around zlib's ~270 KiB deflate state on every gzip scrape, slowing gzip scrapes down;
    /// 8 MiB keeps that memory in place. The figures: docs/benchmarks.md.
    static func returnLargeBuffersToTheSystem() {
        _ = mallopt(mdevmon_M_MMAP_THRESHOLD, 1024 * 1024)
        _ = mallopt(mdevmon_M_TRIM_THRESHOLD, 8 * 1024 * 1024)
    }

    /// Hands memory that is free but still held by malloc's arenas back to the system. Called after a burst
    /// of HTTP connections: without it, the connections' freed buffers stay in the arenas for good
    /// (figures in docs/benchmarks.md).
    /// - Returns: whether any memory was returned.
    @discardableResult
    static func returnFreedMemoryToTheSystem() -> Bool {
        malloc_trim(0) == 1
    }
}
