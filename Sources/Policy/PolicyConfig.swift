import Foundation

/// mdevmon's policy configuration (`--config.file`, YAML). Every field has a default, so a missing
/// default file means "defaults".
public struct PolicyConfig: Hashable, Sendable {
    /// Which devices mdevmon may act on. Empty lists mean "any"; `excludeUUIDs` always wins.
    public struct Ownership: Hashable, Sendable {
        public var parents: [String] = []
        public var mdevTypes: [String] = []
        public var uuids: [String] = []
        public var excludeUUIDs: [String] = []
        public init() {}
    }

    public struct Restore: Hashable, Sendable {
        public var enabled = true
        /// Re-create transient mdevs that were active before the reboot (same UUID, parent, type, attrs).
        public var recreateTransient = false
        /// How long an autostart device may stay inactive after its parent is present before mdevmon
        /// starts it (mdevctl's udev rule normally does it first).
        public var autostartGracePeriod: Duration = .seconds(30)
        /// Wait, before the first attempt, until the parent offers the device's type with an instance
        /// available (a vGPU's vendor driver registers its types seconds or minutes into the boot). Off: try as
        /// soon as the parent device exists, and retry on the backoff.
        public var waitForType = true
        public var retryInitial: Duration = .seconds(1)
        public var retryMax: Duration = .seconds(60)
        /// Give up on a device this long after its first attempt.
        public var deadline: Duration = .seconds(600)
        /// Restores that talk to libvirt at once; the rest wait their turn (after a reboot with hundreds
        /// of mdevs, hundreds of parallel RPCs would only queue in libvirtd).
        public var maxConcurrent = 4
        public init() {}

        /// The longest duration any field accepts (7 days). A longer one is a typo (`30000` meaning
        /// milliseconds), and an unbounded one would not fit the clocks' arithmetic.
        public static let longestDuration: Duration = .seconds(7 * 24 * 3600)
        /// The most restores at once: libvirtd serves 5 calls per client at a time by default
        /// (`max_client_requests`), so more only queue there.
        public static let maxConcurrentLimit = 64
    }

    public struct DomainReferences: Hashable, Sendable {
        public var enabled = true
        public init() {}
    }

    /// Decide and log, but never act.
    public var dryRun = false
    public var ownership = Ownership()
    public var restore = Restore()
    public var domainReferences = DomainReferences()

    public init() {}

    /// True when a policy may change libvirt state, so the connection must be read-write.
    public var needsWriteAccess: Bool { restore.enabled && !dryRun }

    /// Whether restores act (start and create devices) under this configuration, over a connection that
    /// is `writable` or not.
    func acts(writable: Bool) -> Bool { !dryRun && writable }

    /// Whether mdevmon may act on this device.
    public func owns(uuid: String, parent: String, mdevType: String) -> Bool {
        let u = uuid.lowercased()
        if ownership.excludeUUIDs.contains(where: { $0.lowercased() == u }) { return false }
        if !ownership.uuids.isEmpty && !ownership.uuids.contains(where: { $0.lowercased() == u }) { return false }
        if !ownership.parents.isEmpty && !ownership.parents.contains(parent) { return false }
        if !ownership.mdevTypes.isEmpty && !ownership.mdevTypes.contains(mdevType) { return false }
        return true
    }
}

/// A configuration problem, naming the file, line and field.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String
    public var problem: String

    public var description: String {
        let at = line.map { ":\($0)" } ?? ""
        return "config \(file)\(at): \(field): \(problem)"
    }
}
