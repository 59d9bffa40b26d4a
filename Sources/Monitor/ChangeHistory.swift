import Synchronization

/// Which devices and domains each recent index mutation touched, by snapshot generation. A reader that
/// keeps data derived from an older snapshot (the exporter's rendered text) asks which keys changed
/// since then and updates only those: work proportional to the change, not to the index.
///
/// Bounded twice: the last `capacity` mutations, holding at most `maxKeys` keys together (a full sync
/// can touch every device). A reader further behind, or across a mutation too large to keep, gets nil
/// and compares whole maps instead.
public final class ChangeHistory: Sendable {
    public struct Touched: Sendable, Equatable {
        public var devices: Set<MdevKey> = []
        public var domains: Set<String> = []
    }

    private struct Entry {
        var generation: Int
        /// nil: more keys than the history keeps; readers spanning this mutation fall back.
        var keys: (devices: [MdevKey], domains: [String])?
        var size: Int { keys.map { $0.devices.count + $0.domains.count } ?? 0 }
    }

    private struct Ring {
        var slots: [Entry?]
        var head = 0
        var count = 0
        var keys = 0

        mutating func dropOldest() {
            keys -= slots[head]!.size
            slots[head] = nil
            head = (head + 1) % slots.count
            count -= 1
        }
    }

    public let capacity: Int
    public let maxKeys: Int
    private let ring: Mutex<Ring>

    public init(capacity: Int = 1024, maxKeys: Int = 65_536) {
        precondition(capacity > 0 && maxKeys > 0, "a history must hold at least one mutation")
        self.capacity = capacity
        self.maxKeys = maxKeys
        ring = Mutex(Ring(slots: Array(repeating: nil, count: capacity)))
    }

    /// Records the mutation that produced snapshot `generation` (one more than the previous one).
    func record(generation: Int, _ changes: [IndexChange]) {
        var devices: [MdevKey] = [], domains: [String] = []
        for change in changes {
            switch change {
            case .deviceAdded(let d), .deviceRemoved(let d): devices.append(d.key)
            case .deviceChanged(let old, let new): devices += old.key == new.key ? [new.key] : [old.key, new.key]
            case .domainAdded(let d), .domainRemoved(let d), .domainChanged(_, let d): domains.append(d.name)
            case .parentAdded, .parentChanged, .parentRemoved, .connection: break
            }
        }
        let entry = Entry(generation: generation,
                          keys: devices.count + domains.count > maxKeys ? nil : (devices, domains))
        ring.withLock { r in
            // Slots are found from generations, so they must be consecutive (DeviceIndex counts one by one).
            precondition(r.count == 0 || generation == r.slots[r.head]!.generation + r.count,
                         "ChangeHistory: generation \(generation) does not follow the last one recorded")
            if r.count == capacity { r.dropOldest() }
            while r.count > 0 && r.keys + entry.size > maxKeys { r.dropOldest() }
            r.slots[(r.head + r.count) % capacity] = entry
            r.count += 1
            r.keys += entry.size
        }
    }

    /// The keys the mutations after generation `from`, up to and including `to`, touched; nil when the
    /// history no longer reaches back to `from` (or `to` is not recorded yet).
    public func touched(after from: Int, through to: Int) -> Touched? {
        guard from <= to else { return nil }
        if from == to { return Touched() }
        return ring.withLock { r -> Touched? in
            guard r.count > 0 else { return nil }
            // Generations are consecutive, so an entry's slot follows from its generation.
            let oldest = r.slots[r.head]!.generation, newest = oldest + r.count - 1
            guard from + 1 >= oldest, to <= newest else { return nil }
            var out = Touched()
            for generation in (from + 1)...to {
                guard let keys = r.slots[(r.head + generation - oldest) % capacity]!.keys else { return nil }
                out.devices.formUnion(keys.devices)
                out.domains.formUnion(keys.domains)
            }
            return out
        }
    }
}
