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
}
