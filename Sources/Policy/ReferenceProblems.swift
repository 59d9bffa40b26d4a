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
        domains.keys.flatMap { referenceProblems(ofDomain: $0) }.sorted()
    }

    /// The reference problems of one domain (none unless it is defined), in its document order: the work
    /// of re-evaluating one domain after a change, not the whole index.
    public func referenceProblems(ofDomain name: String) -> [ReferenceProblem] {
        guard let domain = domains[name], domain.persistent else { return [] }
        var out: [ReferenceProblem] = []
        for uuid in domain.mdevUUIDs {
            let found = devices(uuid: uuid)
            if found.isEmpty {
                out.append(ReferenceProblem(domain: domain.name, uuid: uuid, reason: .missing, domainAutostart: domain.autostart))
            } else if !found.contains(where: \.active) {
                out.append(ReferenceProblem(domain: domain.name, uuid: uuid, reason: .inactive, domainAutostart: domain.autostart))
            }
        }
        return out
    }

    /// The domains whose reference problems these changes can alter: a device change concerns the
    /// domains referencing its UUID, a domain change that domain. Parents and the connection concern none.
    public func domainsAffected(by changes: [IndexChange]) -> Set<String> {
        var out: Set<String> = []
        for change in changes {
            switch change {
            case .deviceAdded(let d), .deviceRemoved(let d), .deviceChanged(_, let d):
                out.formUnion(domainsReferencing(d.uuid))
            case .domainAdded(let d), .domainRemoved(let d), .domainChanged(_, let d):
                out.insert(d.name)
            default:
                break
            }
        }
        return out
    }

    /// Active mdevs that no defined domain references: candidates for leak hunting.
    public var orphanedDevices: [MdevDevice] {
        devices.values.filter { device in
            device.active && !device.domains.contains { domains[$0]?.persistent == true }
        }.sorted { $0.key < $1.key }
    }
}

/// Remembers the problems last reported, per domain, so each appears and clears exactly once in the log.
public struct ReferenceTracker: Sendable {
    public private(set) var byDomain: [String: [ReferenceProblem]] = [:]

    public init() {}

    /// Every known problem, sorted.
    public var current: [ReferenceProblem] { byDomain.values.flatMap { $0 }.sorted() }

    /// Replaces every known problem; returns those that appeared (or changed reason) and those that cleared.
    public mutating func update(_ problems: [ReferenceProblem]) -> (appeared: [ReferenceProblem], cleared: [ReferenceProblem]) {
        let grouped = Dictionary(grouping: problems, by: \.domain)
        var appeared: [ReferenceProblem] = [], cleared: [ReferenceProblem] = []
        for domain in Set(byDomain.keys).union(grouped.keys) {
            let (a, c) = update(domain: domain, grouped[domain] ?? [])
            appeared += a
            cleared += c
        }
        return (appeared.sorted(), cleared.sorted())
    }

    /// Replaces one domain's problems: the incremental step.
    public mutating func update(domain: String, _ problems: [ReferenceProblem]) -> (appeared: [ReferenceProblem], cleared: [ReferenceProblem]) {
        let old = byDomain[domain] ?? []
        byDomain[domain] = problems.isEmpty ? nil : problems
        let oldSet = Set(old)
        // A reference whose problem only changed (reason, domain autostart) is reported again, not as resolved.
        let stillBroken = Set(problems.map(\.uuid))
        return (problems.filter { !oldSet.contains($0) }.sorted(), old.filter { !stillBroken.contains($0.uuid) }.sorted())
    }
}
