public import Monitor

/// Why a defined domain could not start now: one of the mdevs its configuration references is not
/// ready for it (an mdev must be active, and free, before its domain starts).
public struct ReferenceProblem: Hashable, Sendable, Comparable {
    public enum Reason: String, Hashable, Sendable, CaseIterable {
        /// No mdev with this UUID exists.
        case missing
        /// Defined but inactive; its parent has room for it, so starting it would do.
        case inactive
        /// Inactive, and its parent offers its type with no instance available (used up).
        case noCapacity = "no_capacity"
        /// Inactive, and its parent does not offer its type (yet): the parent's driver has not registered it
        /// (a vGPU's vendor driver still loading at boot, unbound, or its device failing reads).
        case typeNotOffered = "type_not_offered"
        /// Inactive, and libvirt files it under its placeholder parent: the real parent is not there.
        case parentMissing = "parent_missing"
        /// Active, but another running domain holds it: an mdev serves one VM at a time.
        case inUse = "in_use"
        /// Not ready, but the restore policy is bringing it back now (after a reboot): news, not an alarm.
        /// A restore that gives up or parks turns this into the reason underneath.
        case restoring

        /// Which reason stands for a UUID several devices share (under different parents): the one
        /// nearest to startable.
        var rank: Int {
            switch self {
            case .inactive, .restoring: 0
            case .inUse: 1
            case .noCapacity: 2
            case .typeNotOffered: 3
            case .parentMissing: 4
            case .missing: 5
            }
        }
    }

    public var domain: String
    public var uuid: String
    public var reason: Reason
    /// The domain autostarts, so the host's next boot will fail to start it.
    public var domainAutostart: Bool
    /// For `in_use`: the running domains that hold the mdev.
    public var heldBy: [String]

    public init(domain: String, uuid: String, reason: Reason, domainAutostart: Bool, heldBy: [String] = []) {
        self.domain = domain
        self.uuid = uuid
        self.reason = reason
        self.domainAutostart = domainAutostart
        self.heldBy = heldBy
    }

    public static func < (a: Self, b: Self) -> Bool { (a.domain, a.uuid) < (b.domain, b.uuid) }
}

extension IndexState {
    /// Every reference problem of every persistent (defined) domain, sorted.
    public var referenceProblems: [ReferenceProblem] {
        domains.keys.flatMap { referenceProblems(ofDomain: $0) }.sorted()
    }

    /// The reference problems of one domain (none unless it is defined), in its document order: the work
    /// of re-evaluating one domain after a change, not the whole index. A domain with none would start.
    /// - Parameter restoring: whether a restore is bringing the mdev of this UUID back now; its problem,
    ///   unless another running domain holds it, is then `restoring`.
    public func referenceProblems(ofDomain name: String, restoring: (String) -> Bool = { _ in false }) -> [ReferenceProblem] {
        guard let domain = domains[name], domain.persistent else { return [] }
        var out: [ReferenceProblem] = []
        for uuid in domain.mdevUUIDs {
            // libvirt finds the mdev by UUID alone. An active one decides alone: while it exists the kernel
            // creates no other with its UUID, whatever the parent. Otherwise the inactive one nearest to
            // startable stands.
            let found = devices(uuid: uuid)
            var best: (reason: ReferenceProblem.Reason, heldBy: [String])? = (.missing, [])
            if let active = found.first(where: \.active) {
                best = blocker(active, for: domain.name)
            } else {
                for device in found {
                    guard let blocker = blocker(device, for: domain.name) else { best = nil; break }
                    if blocker.reason.rank < best!.reason.rank { best = blocker }
                }
            }
            if var best {
                if best.reason != .inUse && restoring(uuid) { best.reason = .restoring }
                out.append(ReferenceProblem(domain: domain.name, uuid: uuid, reason: best.reason,
                                            domainAutostart: domain.autostart, heldBy: best.heldBy))
            }
        }
        return out
    }

    /// What keeps `device` from serving `domain` at its start, or nil when nothing does.
    private func blocker(_ device: MdevDevice, for domain: String) -> (reason: ReferenceProblem.Reason, heldBy: [String])? {
        if device.active {
            let others = device.inUseBy.filter { $0 != domain }
            return others.isEmpty ? nil : (.inUse, others)
        }
        if device.parent == IndexState.placeholderParent { return (.parentMissing, []) }
        // A parent outside the index offers no mdev types at all (libvirt lists only parents that do).
        guard let type = parents[device.parent]?.types.first(where: { $0.id == device.mdevType }) else { return (.typeNotOffered, []) }
        return type.availableInstances > 0 ? (.inactive, []) : (.noCapacity, [])
    }

    /// The domains whose reference problems these changes can alter: a device change concerns the
    /// domains referencing its UUID (a running domain's hot(un)plug changes the device's users, so it
    /// arrives as such a change too), a domain change that domain, and a parent's capacity the domains
    /// referencing its inactive devices of the types whose availability appeared or ran out. The connection
    /// concerns none.
    public func domainsAffected(by changes: [IndexChange]) -> Set<String> {
        var out: Set<String> = []
        func parentMoved(_ name: String, types: Set<String>?) {
            for device in inactiveDevices(onParent: name) where types?.contains(device.mdevType) ?? true {
                out.formUnion(domainsReferencing(device.uuid))
            }
        }
        for change in changes {
            switch change {
            case .deviceAdded(let d), .deviceRemoved(let d), .deviceChanged(_, let d):
                out.formUnion(domainsReferencing(d.uuid))
            case .domainAdded(let d), .domainRemoved(let d), .domainChanged(_, let d):
                out.insert(d.name)
            case .parentAdded(let p), .parentRemoved(let p):
                parentMoved(p.name, types: nil)
            case .parentChanged(let old, let new):
                // Blockers ask only whether the type is offered with an instance available: a count that moves
                // without crossing zero (every start and stop on the parent moves it) changes no answer.
                let before = Dictionary(old.types.map { ($0.id, $0.availableInstances > 0) }) { a, _ in a }
                let after = Dictionary(new.types.map { ($0.id, $0.availableInstances > 0) }) { a, _ in a }
                let crossed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }
                if !crossed.isEmpty { parentMoved(new.name, types: crossed) }
            case .connection:
                break
            }
        }
        return out
    }

    /// Active mdevs that no defined domain references and no running domain uses: candidates for leak
    /// hunting.
    public var orphanedDevices: [MdevDevice] {
        devices.values.filter { device in
            device.active && device.inUseBy.isEmpty && !device.domains.contains { domains[$0]?.persistent == true }
        }.sorted { $0.key < $1.key }
    }
}

/// One defined domain that references mdevs, as one evaluation saw it: whether it autostarts, and
/// what keeps it from starting now (nothing: it could start).
public struct DomainVerdict: Hashable, Sendable {
    public var autostart: Bool
    public var problems: [ReferenceProblem]

    public init(autostart: Bool, problems: [ReferenceProblem]) {
        self.autostart = autostart
        self.problems = problems
    }

    public var startable: Bool { problems.isEmpty }
}

/// The last verdict on every evaluated domain: what the journal was told (so each problem appears and
/// clears exactly once) and what the metrics publish (startable and blockers from the same evaluation).
public struct ReferenceTracker: Sendable {
    /// Defined domains that reference mdevs, by name.
    public private(set) var verdicts: [String: DomainVerdict] = [:]

    public init() {}

    /// Every known problem, sorted.
    public var current: [ReferenceProblem] { verdicts.values.flatMap(\.problems).sorted() }

    /// Replaces every known problem (domains without one are forgotten); returns those that appeared
    /// (or changed reason) and those that cleared.
    public mutating func update(_ problems: [ReferenceProblem]) -> (appeared: [ReferenceProblem], cleared: [ReferenceProblem]) {
        let grouped = Dictionary(grouping: problems, by: \.domain)
        var appeared: [ReferenceProblem] = [], cleared: [ReferenceProblem] = []
        for domain in Set(verdicts.keys).union(grouped.keys) {
            let verdict = grouped[domain].map { DomainVerdict(autostart: $0.contains(where: \.domainAutostart), problems: $0) }
            let (a, c) = update(domain: domain, verdict)
            appeared += a
            cleared += c
        }
        return (appeared.sorted(), cleared.sorted())
    }

    /// Replaces one domain's verdict (nil: not a defined domain that references mdevs): the incremental
    /// step.
    public mutating func update(domain: String, _ verdict: DomainVerdict?) -> (appeared: [ReferenceProblem], cleared: [ReferenceProblem]) {
        let old = verdicts[domain]?.problems ?? []
        verdicts[domain] = verdict
        let problems = verdict?.problems ?? []
        let oldSet = Set(old)
        // A reference whose problem only changed (reason, domain autostart) is reported again, not as resolved.
        let stillBroken = Set(problems.map(\.uuid))
        return (problems.filter { !oldSet.contains($0) }.sorted(), old.filter { !stillBroken.contains($0.uuid) }.sorted())
    }
}
