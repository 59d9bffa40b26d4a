import Glibc

/// The process's open-files limit (`RLIMIT_NOFILE`).
///
/// systemd starts services with a soft limit of 1024 (for `select()` users) and a hard limit far above
/// it. mdevmon uses epoll, so, like Go programs, it lifts the soft limit to the hard one: a thousand
/// idle or slow HTTP clients must not make `accept` fail for Prometheus. Allowed under the unit's
/// syscall filter: glibc's `setrlimit` is the `prlimit64` syscall, which `@system-service` keeps.
public enum OpenFilesLimit {
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    /// The soft and hard limits now (`RLIM_INFINITY` when unlimited).
    public static var current: (soft: UInt, hard: UInt) {
        var limit = rlimit()
        getrlimit(resource, &limit)
        return (UInt(limit.rlim_cur), UInt(limit.rlim_max))
    }

    /// Lifts the soft limit to the hard one.
    /// - Returns: the soft limit before and after, when it changed.
    @discardableResult
    public static func raiseToHard() -> (from: UInt, to: UInt)? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
        let from = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else { return nil }
        return (UInt(from), UInt(limit.rlim_cur))
    }
}
