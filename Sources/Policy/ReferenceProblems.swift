public import Monitor

/// A defined domain referencing an mdev that is missing or inactive: it would fail to start.
public struct ReferenceProblem: Hashable, Sendable, Comparable {
    public enum Reason: String, Hashable, Sendable { case missing, inactive }

    public var domain: String
    public var uuid: String
    public var reason: Reason
    /// The domain autostarts, so the host's next boot will fail to start it.
    public var domainAutostart: Bool

    public init(domain: String, uuid: String, reason: Reason, domainAutostart: Bool) {
        self.domain = domain
        self.uuid = uuid
        self.reason = reason
        self.domainAutostart = domainAutostart
    }

    public static func < (a: Self, b: Self) -> Bool { (a.domain, a.uuid) < (b.domain, b.uuid) }
}

extension IndexState {
    /// Every reference problem of every persistent (defined) domain, sorted.
    public var referenceProblems: [ReferenceProblem] {
        var out: [ReferenceProblem] = []
        for domain in domains.values where domain.persistent {
            for uuid in domain.mdevUUIDs {
                let found = devices(uuid: uuid)
                if found.isEmpty {
                    out.append(ReferenceProblem(domain: domain.name, uuid: uuid, reason: .missing, domainAutostart: domain.autostart))
                } else if !found.contains(where: \.active) {
                    out.append(ReferenceProblem(domain: domain.name, uuid: uuid, reason: .inactive, domainAutostart: domain.autostart))
                }
            }
        }
        return out.sorted()
    }

    /// Active mdevs that no defined domain references: candidates for leak hunting.
    public var orphanedDevices: [MdevDevice] {
        devices.values.filter { device in
            device.active && !device.domains.contains { domains[$0]?.persistent == true }
        }.sorted { $0.key < $1.key }
    }
}

/// Remembers the problems last reported so each appears and clears exactly once in the log.
public struct ReferenceTracker: Sendable {
    public private(set) var current: [ReferenceProblem] = []

    public init() {}

    /// Replaces the known problems; returns those that appeared (or changed reason) and those that cleared.
    public mutating func update(_ problems: [ReferenceProblem]) -> (appeared: [ReferenceProblem], cleared: [ReferenceProblem]) {
        let old = Set(current), new = Set(problems)
        current = problems
        // A reference whose problem only changed (reason, domain autostart) is reported again, not as resolved.
        let stillBroken = Set(problems.map { [$0.domain, $0.uuid] })
        return (new.subtracting(old).sorted(), old.filter { !stillBroken.contains([$0.domain, $0.uuid]) }.sorted())
    }
}
