public import HashTreeCollections

/// The whole index as a value: devices, parents and domains, with each device's referencing domains
/// derived from the domains. All mutations return the `IndexChange`s they caused.
///
/// Stored in persistent hash maps (`TreeDictionary`): the published snapshot and the next state share
/// every unchanged part, so a mutation costs O(log n), not a copy of the whole index.
public struct IndexState: Hashable, Sendable {
    public private(set) var devices: TreeDictionary<MdevKey, MdevDevice> = [:]
    public private(set) var parents: TreeDictionary<String, ParentDevice> = [:]
    public private(set) var domains: TreeDictionary<String, DomainInfo> = [:]
    /// How many devices are active, kept up to date by every mutation (a summary must not scan 10,000).
    public private(set) var activeCount = 0
    /// libvirt node-device name → key, to resolve DELETED/UNDEFINED events that carry only the name.
    private var keysByName: TreeDictionary<String, MdevKey> = [:]
    /// mdev UUID → keys, since a UUID may exist under several parents.
    private var keysByUUID: TreeDictionary<String, Set<MdevKey>> = [:]
    /// mdev UUID → names of domains referencing it.
    private var referencesByUUID: TreeDictionary<String, Set<String>> = [:]
    /// mdev UUID → names of running domains using it (their live XML).
    private var usersByUUID: TreeDictionary<String, Set<String>> = [:]
    /// parent name → its inactive devices: those whose startability its capacity decides. One parent may
    /// hold all 10,000, so the set is persistent too: a `Set` shared with the published snapshot was
    /// copied whole by every define or start on that parent.
    private var inactiveKeysByParent: TreeDictionary<String, TreeSet<MdevKey>> = [:]

    public init() {}

    /// Builds a state from complete lists, as a full sync does.
    public init(devices: [MdevDevice], parents: [ParentDevice], domains: [DomainInfo]) {
        for domain in domains { _ = upsertDomain(domain) }
        for parent in parents { _ = upsertParent(parent) }
        for device in devices { _ = upsertDevice(device.definition, flags: device.flags, definedConfig: device.definedConfig) }
    }

    public func device(named name: String) -> MdevDevice? {
        keysByName[name].flatMap { devices[$0] }
    }

    /// libvirt lists a defined mdev under its root device `computer` while the real parent is absent
    /// (e.g. its driver is not loaded yet); the device moves to the real parent when that appears.
    public static let placeholderParent = "computer"

    /// The device `key` refers to now: by uuid and parent, or under libvirt's placeholder parent while
    /// the real one is missing.
    public func current(_ key: MdevKey) -> MdevDevice? {
        devices[key] ?? devices(uuid: key.uuid).first { $0.parent == Self.placeholderParent }
    }

    /// Names of the domains whose configuration references this mdev UUID.
    public func domainsReferencing(_ uuid: String) -> Set<String> { referencesByUUID[uuid] ?? [] }

    /// Names of the running domains whose live XML holds this mdev UUID.
    public func domainsUsing(_ uuid: String) -> Set<String> { usersByUUID[uuid] ?? [] }

    /// The inactive devices under a parent, whatever their type.
    public func inactiveDevices(onParent parent: String) -> [MdevDevice] {
        (inactiveKeysByParent[parent] ?? []).compactMap { devices[$0] }
    }

    /// Every device with this UUID, whatever its parent.
    public func devices(uuid: String) -> [MdevDevice] {
        (keysByUUID[uuid] ?? []).compactMap { devices[$0] }.sorted { $0.key < $1.key }
    }

    // MARK: devices

    /// Inserts or replaces the device libvirt reported under `definition.name`.
    /// - Parameter definedConfig: what its definition makes the next start apply, when libvirt said.
    public mutating func upsertDevice(_ definition: MdevDefinition, flags: DeviceFlags,
                                      definedConfig: MdevConfig? = nil) -> [IndexChange] {
        var changes: [IndexChange] = []
        // A name that now maps to another key (parent re-parented, UUID edited) retires the old entry.
        if let oldKey = keysByName[definition.name], oldKey != definition.key {
            changes += removeDevice(named: definition.name)
        }
        let key = definition.key
        let new = MdevDevice(definition: definition, flags: flags, definedConfig: definedConfig,
                             domains: Self.sorted(referencesByUUID[definition.uuid]),
                             inUseBy: Self.sorted(usersByUUID[definition.uuid]))
        let old = devices[key]
        if let old, old.name != definition.name { keysByName[old.name] = nil }
        devices[key] = new
        activeCount += (new.active ? 1 : 0) - (old?.active == true ? 1 : 0)
        if old?.active == false { Self.remove(key, under: key.parent, from: &inactiveKeysByParent) }
        if !new.active { inactiveKeysByParent[key.parent, default: []].insert(key) }
        keysByName[definition.name] = key
        keysByUUID[definition.uuid, default: []].insert(key)
        if let old {
            if old != new { changes.append(.deviceChanged(old: old, new: new)) }
        } else {
            changes.append(.deviceAdded(new))
        }
        return changes
    }

    /// Removes the device libvirt knew as `name`; no change when the index never had it.
    public mutating func removeDevice(named name: String) -> [IndexChange] {
        guard let key = keysByName.removeValue(forKey: name), let old = devices.removeValue(forKey: key) else {
            return []
        }
        Self.remove(key, under: key.uuid, from: &keysByUUID)
        if old.active { activeCount -= 1 } else { Self.remove(key, under: key.parent, from: &inactiveKeysByParent) }
        return [.deviceRemoved(old)]
    }

    // MARK: parents

    public mutating func upsertParent(_ parent: ParentDevice) -> [IndexChange] {
        let old = parents.updateValue(parent, forKey: parent.name)
        switch old {
        case nil: return [.parentAdded(parent)]
        case let old? where old != parent: return [.parentChanged(old: old, new: parent)]
        default: return []
        }
    }

    /// The other parents in `name`'s pool (`ParentDevice.pool`): an mdev created on one can change what the
    /// others have available. None when it has no pool.
    public func parents(sharingPoolWith name: String) -> [String] {
        guard let pool = parents[name]?.pool else { return [] }
        return parents.values.filter { $0.pool == pool && $0.name != name }.map(\.name).sorted()
    }

    public mutating func removeParent(named name: String) -> [IndexChange] {
        guard let old = parents.removeValue(forKey: name) else { return [] }
        return [.parentRemoved(old)]
    }

    // MARK: domains

    /// Inserts or replaces a domain and updates the references of every device whose UUID it gained or lost.
    public mutating func upsertDomain(_ domain: DomainInfo) -> [IndexChange] {
        let old = domains.updateValue(domain, forKey: domain.name)
        var changes: [IndexChange]
        switch old {
        case nil: changes = [.domainAdded(domain)]
        case let old? where old != domain: changes = [.domainChanged(old: old, new: domain)]
        default: return []
        }
        let touched = Self.relink(domain.name, from: old?.mdevUUIDs ?? [], to: domain.mdevUUIDs, in: &referencesByUUID)
            .union(Self.relink(domain.name, from: old?.liveMdevUUIDs ?? [], to: domain.liveMdevUUIDs, in: &usersByUUID))
        changes += refreshReferences(touched)
        return changes
    }

    public mutating func removeDomain(named name: String) -> [IndexChange] {
        guard let old = domains.removeValue(forKey: name) else { return [] }
        let touched = Self.relink(name, from: old.mdevUUIDs, to: [], in: &referencesByUUID)
            .union(Self.relink(name, from: old.liveMdevUUIDs, to: [], in: &usersByUUID))
        return [.domainRemoved(old)] + refreshReferences(touched)
    }

    /// Moves `domain` from the UUIDs it had in `map` to those it has now; returns the UUIDs that changed.
    private static func relink(_ domain: String, from old: [String], to new: [String],
                               in map: inout TreeDictionary<String, Set<String>>) -> Set<String> {
        let before = Set(old), after = Set(new)
        for uuid in before.subtracting(after) { remove(domain, under: uuid, from: &map) }
        for uuid in after.subtracting(before) { map[uuid, default: []].insert(domain) }
        return before.symmetricDifference(after)
    }

    /// Drops an emptied set too, so equal contents give equal states (the derived maps take part in `==`).
    private static func remove<K: Hashable, S: SetAlgebra>(_ value: S.Element, under key: K, from map: inout TreeDictionary<K, S>) {
        map[key]?.remove(value)
        if map[key]?.isEmpty == true { map[key] = nil }
    }

    private static func sorted(_ names: Set<String>?) -> [String] { (names ?? []).sorted() }

    private mutating func refreshReferences(_ uuids: Set<String>) -> [IndexChange] {
        var changes: [IndexChange] = []
        for uuid in uuids.sorted() {
            for key in (keysByUUID[uuid] ?? []).sorted() {
                guard let old = devices[key] else { continue }
                var new = old
                new.domains = Self.sorted(referencesByUUID[uuid])
                new.inUseBy = Self.sorted(usersByUUID[uuid])
                if new != old {
                    devices[key] = new
                    changes.append(.deviceChanged(old: old, new: new))
                }
            }
        }
        return changes
    }

    // MARK: diff

    /// The changes that turn `old` into `new`, as a full resync reports them: removals first, then
    /// additions and changes, each group in key order so output is deterministic.
    public static func diff(from old: IndexState, to new: IndexState) -> [IndexChange] {
        var changes: [IndexChange] = []
        changes += diffMaps(old.domains, new.domains, removed: IndexChange.domainRemoved,
                            added: IndexChange.domainAdded, changed: IndexChange.domainChanged)
        changes += diffMaps(old.parents, new.parents, removed: IndexChange.parentRemoved,
                            added: IndexChange.parentAdded, changed: IndexChange.parentChanged)
        changes += diffMaps(old.devices, new.devices, removed: IndexChange.deviceRemoved,
                            added: IndexChange.deviceAdded, changed: IndexChange.deviceChanged)
        return changes
    }

    private static func diffMaps<K: Comparable & Hashable, V: Equatable>(
        _ old: TreeDictionary<K, V>, _ new: TreeDictionary<K, V>, removed: (V) -> IndexChange, added: (V) -> IndexChange,
        changed: (V, V) -> IndexChange
    ) -> [IndexChange] {
        var out: [IndexChange] = []
        for key in old.keys.sorted() where new[key] == nil { out.append(removed(old[key]!)) }
        for key in new.keys.sorted() {
            let value = new[key]!
            if let before = old[key] {
                if before != value { out.append(changed(before, value)) }
            } else {
                out.append(added(value))
            }
        }
        return out
    }
}
