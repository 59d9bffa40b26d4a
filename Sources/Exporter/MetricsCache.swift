import HashTreeCollections
import Monitor
import Synchronization

/// The families rendered from the index (devices, parents, domains), kept between scrapes and
/// brought up to date from each new snapshot by re-rendering only what changed: a changed device
/// re-renders the block of ~256 devices it sits in (`RowBlocks`), not 10,000.
///
/// Rendering with or without a cache produces identical text; the cache only saves work.
public final class MetricsCache: Sendable {
    private struct State: Sendable {
        /// The index data the cached text was rendered from, and which snapshot of which index that was.
        var devices: TreeDictionary<MdevKey, MdevDevice> = [:]
        var generation: Int?
        /// Held, so that no other index's history can take its address and pass for it.
        var history: ChangeHistory?
        /// Renders that compared whole maps because the history could not say what changed (tests).
        var fullComparisons = 0
        var parents: TreeDictionary<String, ParentDevice> = [:]
        var domains: TreeDictionary<String, DomainInfo> = [:]
        var deviceRows = RowBlocks(families: MetricsRenderer.deviceFamilies)
        var domainRows = RowBlocks(families: MetricsRenderer.domainFamilies)
        /// Active and inactive devices per (parent, mdev type), for `mdev_devices`.
        var counts: [ParentType: StateCounts] = [:]
        /// `mdev_devices` and the parent families; nil when parents or counts changed.
        var parentFamilies: [(name: String, chunks: [Chunk])]?
    }

    private let state = Mutex(State())

    public init() {}

    /// How many renders compared whole maps (the first one, and any the history could not serve).
    var fullComparisons: Int { state.withLock { $0.fullComparisons } }

    /// The index-derived families for `snapshot`, in no particular order.
    func families(_ snapshot: IndexSnapshot) -> [(name: String, chunks: [Chunk])] {
        let index = snapshot.state
        return state.withLock { state in
            // The index says which keys its mutations since the cached snapshot touched; only when it no
            // longer remembers (or the snapshot is from elsewhere) are the whole maps compared.
            var touched: ChangeHistory.Touched?
            if let history = snapshot.history, history === state.history, let generation = state.generation {
                touched = history.touched(after: generation, through: snapshot.generation)
            }
            if touched == nil { state.fullComparisons += 1 }
            state.generation = snapshot.generation
            state.history = snapshot.history
            let devices = touched.map { Self.changes(of: $0.devices, from: state.devices, to: index.devices) }
                ?? Self.changes(from: state.devices, to: index.devices)
            state.deviceRows.apply(devices)
            for (_, old, new) in devices {
                if let old { state.counts[ParentType(old), default: StateCounts()].add(old, -1) }
                if let new { state.counts[ParentType(new), default: StateCounts()].add(new, 1) }
            }
            if !devices.isEmpty { state.parentFamilies = nil }
            state.devices = index.devices
            state.domainRows.apply(touched.map { Self.changes(of: $0.domains, from: state.domains, to: index.domains) }
                                   ?? Self.changes(from: state.domains, to: index.domains))
            state.domains = index.domains
            if state.parents != index.parents {
                state.parents = index.parents
                state.parentFamilies = nil
            }
            if state.parentFamilies == nil {
                state.counts = state.counts.filter { !$0.value.isEmpty }
                state.parentFamilies = MetricsRenderer.parentFamilies(state.parents, counts: state.counts)
            }
            return state.deviceRows.renderedFamilies() + state.domainRows.renderedFamilies() + state.parentFamilies!
        }
    }

    /// What differs between two versions of a map among `keys`: (key, old value, new value), nil where absent.
    static func changes<K: Hashable, V: Equatable>(of keys: Set<K>, from old: TreeDictionary<K, V>,
                                                   to new: TreeDictionary<K, V>) -> [(K, V?, V?)] {
        keys.compactMap { key in
            let before = old[key], after = new[key]
            return before == after ? nil : (key, before, after)
        }
    }

    /// What differs between two versions of a map: (key, old value, new value), nil where absent.
    ///
    /// Maps that share their root are equal at once. Otherwise, since the index's persistent maps keep
    /// every unchanged entry where it was, both versions iterate in the same order after an update:
    /// entries are compared pairwise and a key is looked up only where the two orders part. Copying 10,000
    /// entries out of two maps is still ARC work, costly for a large index, so this is
    /// the fallback for when the index's `ChangeHistory` cannot say which keys changed.
    static func changes<K: Hashable, V: Equatable>(from old: TreeDictionary<K, V>, to new: TreeDictionary<K, V>) -> [(K, V?, V?)] {
        // Consecutive snapshots without a mutation share the map's storage: nothing to look at.
        if sameBits(old, new) { return [] }
        var out: [(K, V?, V?)] = []
        var kept = 0
        var olds = old.makeIterator()
        for (key, value) in new {
            let before: V?
            if let pair = olds.next(), pair.key == key { before = pair.value } else { before = old[key] }
            if let before {
                kept += 1
                if before != value { out.append((key, before, value)) }
            } else {
                out.append((key, nil, value))
            }
        }
        if kept < old.count {
            for (key, value) in old where new[key] == nil { out.append((key, value, nil)) }
        }
        return out
    }
}

/// Whether `a` and `b` are the same bits. For a persistent map that means the same root (and
/// version), so equal without looking inside. This leans on `TreeDictionary`'s layout (its root and a
/// mutation count, no other state); `SharingTests` fails if that stops being so.
func sameBits<T>(_ a: T, _ b: T) -> Bool {
    withUnsafeBytes(of: a) { a in withUnsafeBytes(of: b) { b in a.elementsEqual(b) } }
}

/// A (parent, mdev type) pair, the grain of `mdev_devices`.
struct ParentType: Hashable, Comparable, Sendable {
    var parent: String
    var type: String

    init(parent: String, type: String) {
        self.parent = parent
        self.type = type
    }

    init(_ device: MdevDevice) { self.init(parent: device.parent, type: device.mdevType) }

    static func < (a: Self, b: Self) -> Bool { (a.parent, a.type) < (b.parent, b.type) }
}

struct StateCounts: Sendable {
    var active = 0
    var inactive = 0

    var isEmpty: Bool { active == 0 && inactive == 0 }

    mutating func add(_ device: MdevDevice, _ delta: Int) {
        if device.active { active += delta } else { inactive += delta }
    }
}
