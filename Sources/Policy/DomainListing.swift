public import Foundation
public import Monitor

/// Every domain that references or uses mdevs, with whether it could start now and what blocks it, as
/// `mdevmon list --domains` prints it (table or JSON).
public struct DomainListing: Codable, Hashable, Sendable {
    public struct Blocker: Codable, Hashable, Sendable {
        public var uuid: String
        public var reason: String
        /// For `in_use`: the running domains holding the mdev.
        public var heldBy: [String]
    }

    public struct Domain: Codable, Hashable, Sendable {
        public var name: String
        public var uuid: String
        /// "active" (running or paused) or "inactive" (shut off).
        public var state: String
        public var persistent: Bool
        public var autostart: Bool
        /// mdev UUIDs its configuration references.
        public var mdevs: [String]
        /// mdev UUIDs its live XML holds while it runs (hot-plugged ones included).
        public var liveMdevs: [String]
        /// Every referenced mdev is ready for a start now (only defined domains are judged).
        public var startable: Bool?
        public var blockers: [Blocker]
    }

    public var domains: [Domain]

    public init(_ state: IndexState) {
        domains = state.domains.values.filter { !$0.mdevUUIDs.isEmpty || !$0.liveMdevUUIDs.isEmpty }
            .sorted { $0.name < $1.name }
            .map { d in
                let problems = state.referenceProblems(ofDomain: d.name)
                return Domain(
                    name: d.name, uuid: d.uuid, state: d.active ? "active" : "inactive", persistent: d.persistent,
                    autostart: d.autostart, mdevs: d.mdevUUIDs, liveMdevs: d.liveMdevUUIDs,
                    startable: d.persistent ? problems.isEmpty : nil,
                    blockers: problems.map { Blocker(uuid: $0.uuid, reason: $0.reason.rawValue, heldBy: $0.heldBy) })
            }
    }

    /// Pretty, key-sorted JSON with snake_case keys, ending in a newline (the devices listing's style).
    public func json() -> Data { Listing.json(self) }

    /// One row per domain; blockers as `uuid:reason` (`uuid:in_use(holder)`), comma-separated.
    public func table() -> String {
        var rows = [["DOMAIN", "STATE", "PERSISTENCE", "AUTOSTART", "MDEVS", "IN_USE", "STARTABLE", "BLOCKERS"]]
        for d in domains {
            let blockers = d.blockers.map { b in
                b.heldBy.isEmpty ? "\(b.uuid):\(b.reason)" : "\(b.uuid):\(b.reason)(\(b.heldBy.joined(separator: "+")))"
            }
            rows.append([d.name, d.state, d.persistent ? "persistent" : "transient", d.autostart ? "yes" : "no",
                         d.mdevs.isEmpty ? "-" : d.mdevs.joined(separator: ","),
                         d.liveMdevs.isEmpty ? "-" : d.liveMdevs.joined(separator: ","),
                         d.startable.map { $0 ? "yes" : "no" } ?? "-",
                         blockers.isEmpty ? "-" : blockers.joined(separator: ",")])
        }
        return Listing.render(rows)
    }
}
