public import Foundation

/// The host whose libvirtd a connection talks to, read once at connect: its name and its boot.
public struct WatchedHost: Hashable, Sendable {
    /// `virConnectGetHostname`: the libvirt host's own name (also over a remote URI); nil when it did not say.
    public var hostname: String?
    /// Which boot of that host the connection saw; nil when it cannot be told.
    public var boot: HostBoot?

    public init(hostname: String?, boot: HostBoot?) {
        self.hostname = hostname
        self.boot = boot
    }
}

/// One boot of the watched host, as the state file keeps it: the restore policy acts when it changes.
///
/// A local libvirtd runs on mdevmon's own kernel, whose boot id changes on every boot. A remote one is
/// reached only through libvirt, which reports no boot id: its boot time is estimated from the host's
/// cumulative CPU time (`virNodeGetCPUStats`, all CPUs, divided by `virNodeGetInfo`'s CPU count), which
/// runs from zero at boot. The estimate falls behind by the time the counters miss (steal, an offlined
/// CPU), so two estimates are one boot unless the later is more than `tolerance` later.
public enum HostBoot: Hashable, Sendable, CustomStringConvertible {
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    case kernel(id: String)
    /// A remote host's boot time, Unix seconds, estimated from its CPU time.
    case estimated(bootTime: Int)

    private static let estimatedPrefix = "estimated-boot-time:"

    /// What the state file stores: the boot id as it always was, or `estimated-boot-time:<unix seconds>`.
    public var persisted: String {
        switch self {
        case .kernel(let id): id
        case .estimated(let time): Self.estimatedPrefix + String(time)
        }
    }

    /// What the state file stores when the boot could not be told.
    public static let unknown = "unknown"

    /// nil for `unknown`.
    public init?(persisted: String) {
        guard persisted != Self.unknown, !persisted.isEmpty else { return nil }
        if persisted.hasPrefix(Self.estimatedPrefix), let time = Int(persisted.dropFirst(Self.estimatedPrefix.count)) {
            self = .estimated(bootTime: time)
        } else {
            self = .kernel(id: persisted)
        }
    }

    public var description: String {
        switch self {
        case .kernel(let id): "boot id \(id)"
        case .estimated(let time):
            "boot at about \(Date(timeIntervalSince1970: TimeInterval(time)).formatted(.iso8601))"
        }
    }

    /// How much later a second estimate may be and still be the same boot: a minute, plus 5 % of the time
    /// since the first estimated boot (what steal time and offlined CPUs can hide from the counters).
    public static func tolerance(since bootTime: Int, now: Date) -> Int {
        60 + max(0, Int(now.timeIntervalSince1970) - bootTime) / 20
    }

    /// Whether `self` is a later boot than `earlier`. Two estimates are one boot within the tolerance; boots
    /// of different kinds (the URI moved between a local and a remote host) are not comparable: nil.
    public func isLater(than earlier: HostBoot, now: Date = Date()) -> Bool? {
        switch (earlier, self) {
        case (.kernel(let a), .kernel(let b)): a != b
        case (.estimated(let a), .estimated(let b)): b - a > Self.tolerance(since: a, now: now)
        default: nil
        }
    }

    /// The estimate from a host's cumulative CPU time: now minus that time spread over its CPUs.
    public static func estimate(cpuTimeNanoseconds: UInt64, cpus: Int, now: Date = Date()) -> HostBoot? {
        guard cpus > 0, cpuTimeNanoseconds > 0 else { return nil }
        let uptime = Double(cpuTimeNanoseconds) / 1e9 / Double(cpus)
        return .estimated(bootTime: Int((now.timeIntervalSince1970 - uptime).rounded()))
    }
}

/// The kernel's boot id: changes on every boot.
public enum BootID {
    public static func current(path: String = "/proc/sys/kernel/random/boot_id") -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }
}
