/// One finding of `mdevmon doctor` (and of the daemon's start-up and SIGHUP checks).
public struct HostCheck: Hashable, Sendable, Codable {
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
        case pass, warn, fail

        /// The worse status ranks higher, so `max()` of a run is its overall result.
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
        private var rank: Int {
            switch self {
            case .pass: 0
            case .warn: 1
            case .fail: 2
            }
        }

        /// `mdevmon doctor`'s exit code: 0 all pass, 1 a warning, 2 a failure.
        public var exitCode: Int32 { Int32(rank) }
    }

    /// Stable identifier: the `check` label of `mdev_host_check` and the journal's `CHECK_ID`.
    public var id: String
    public var status: Status
    /// One line: what was found.
    public var summary: String
    /// The specifics (one offending rule line, device or domain per entry).
    public var details: [String]
    /// The command (or edit) that fixes it; nil when the check passes.
    public var fix: String?

    /// At most this many details are kept (a host with 500 stranded mdevs gets the first 20 and a count),
    /// so a finding stays one readable journal entry.
    public static let maxDetails = 20

    public init(id: String, status: Status, summary: String, details: [String] = [], fix: String? = nil) {
        self.id = id
        self.status = status
        self.summary = summary
        self.details = details.count > Self.maxDetails
            ? Array(details.prefix(Self.maxDetails)) + ["… and \(details.count - Self.maxDetails) more"]
            : details
        self.fix = fix
    }
}

/// Every check identifier, in the order `mdevmon doctor` prints them.
public enum HostCheckID {
    public static let libvirt = "libvirt"
    public static let mdevctl = "mdevctl"
    public static let udevRules = "udev_rules"
    public static let kernelModules = "kernel_modules"
    public static let mdevParents = "mdev_parents"
    public static let unparentedMdevs = "unparented_mdevs"
    public static let domainsBlocked = "domains_blocked"
    public static let serviceUnit = "service_unit"
    public static let stateDir = "state_dir"
    public static let config = "config"

    public static let all = [
        libvirt, mdevctl, udevRules, kernelModules, mdevParents, unparentedMdevs, domainsBlocked,
        serviceUnit, stateDir, config,
    ]
}

/// Where the host checks look. Everything is under `root` ("/" on a real host), so unit tests point
/// the checks at a temporary directory holding fake rule files, modules and units.
public struct HostPaths: Hashable, Sendable {
    public var root: String

    public init(root: String = "/") {
        self.root = root
    }

    /// `path` (absolute on the real host) under `root`.
    public func resolve(_ path: String) -> String {
        root == "/" ? path : root + path
    }

    /// udev's rule directories, highest priority first: a file in an earlier directory replaces a
    /// same-named file in a later one (udev(7)).
    public static let udevRuleDirectories = [
        "/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d", "/usr/lib/udev/rules.d",
        "/lib/udev/rules.d",
    ]
    /// The PATH udev runs programs with (systemd's default).
    public static let programPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    /// Where udev looks for a RUN/PROGRAM given without a directory.
    public static let udevLibexec = "/usr/lib/udev"
    /// systemd's unit directories, highest priority first.
    public static let unitDirectories = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
}
