import Monitor

/// The snapshot's devices laid out for rendering 10,000 of them in a few milliseconds: each device
/// struct is copied once, its label sets are escaped once into shared buffers, and rows are sorted
/// by those bytes, without further `String` traffic.
///
/// Rows are ordered by the bytes of `{uuid="…",parent="…"`, i.e. by (uuid, parent) for the plain
/// ASCII UUIDs libvirt uses, matching `IndexSnapshot.sortedDevices`.
struct DeviceTable: ~Copyable {
    static let active: UInt8 = 1, persistent: UInt8 = 2, autostart: UInt8 = 4

    /// `{uuid="…",parent="…"` per device, in extraction order.
    let labels: ByteSink
    /// `,mdev_type="…",name="…",iommu_group="…"` per device, for `mdev_device_info`.
    let infoLabels: ByteSink
    private let labelEnds: [Int32]
    private let infoEnds: [Int32]
    private let flagBits: [UInt8]
    private let referenceCounts: [Int32]
    /// Extraction indices in output order.
    let order: [Int]
    /// Active and inactive devices per (parent, type), for `mdev_devices`.
    let countsByParentType: [ParentType: (active: Int, inactive: Int)]

    init(_ state: IndexState) {
        let n = state.devices.count
        var labels = ByteSink(capacity: n * 72 + 64)
        var infoLabels = ByteSink(capacity: n * 110 + 64)
        var labelEnds = [Int32](), infoEnds = [Int32](), flagBits = [UInt8](), referenceCounts = [Int32]()
        labelEnds.reserveCapacity(n); infoEnds.reserveCapacity(n)
        flagBits.reserveCapacity(n); referenceCounts.reserveCapacity(n)
        var counts: [ParentType: (active: Int, inactive: Int)] = [:]
        for device in state.devices.values {
            let definition = device.definition
            labels.append(#"{uuid=""#)
            labels.appendEscaped(definition.uuid)
            labels.append(#"",parent=""#)
            labels.appendEscaped(definition.parent)
            labels.append(UInt8(ascii: "\""))
            labelEnds.append(Int32(labels.count))
            infoLabels.append(#",mdev_type=""#)
            infoLabels.appendEscaped(definition.mdevType)
            infoLabels.append(#"",name=""#)
            infoLabels.appendEscaped(definition.name)
            infoLabels.append(#"",iommu_group=""#)
            if let group = definition.iommuGroup { infoLabels.append(decimal: group) }
            infoLabels.append(UInt8(ascii: "\""))
            infoEnds.append(Int32(infoLabels.count))
            flagBits.append((device.flags.active ? Self.active : 0) | (device.flags.persistent ? Self.persistent : 0)
                            | (device.flags.autostart ? Self.autostart : 0))
            referenceCounts.append(Int32(clamping: device.domains.count))
            let key = ParentType(parent: definition.parent, type: definition.mdevType)
            if device.flags.active {
                counts[key, default: (0, 0)].active += 1
            } else {
                counts[key, default: (0, 0)].inactive += 1
            }
        }

        // Sort on the first 16 bytes after `{uuid="`, comparing whole label sets only on ties.
        func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(labelEnds[i - 1]))..<Int(labelEnds[i]) }
        var keyed: [(k0: UInt64, k1: UInt64, index: Int)] = []
        keyed.reserveCapacity(n)
        for i in 0..<n {
            let r = range(i)
            keyed.append((labels.prefix64(at: r.lowerBound + 7, limit: r.upperBound),
                          labels.prefix64(at: r.lowerBound + 15, limit: r.upperBound), i))
        }
        keyed.sort { a, b in a.k0 != b.k0 ? a.k0 < b.k0 : a.k1 != b.k1 ? a.k1 < b.k1 : a.index < b.index }
        // Rows whose first 16 UUID bytes tie (rare) are ordered by their whole label set.
        var start = 0
        while start < n {
            var end = start + 1
            while end < n, keyed[end].k0 == keyed[start].k0, keyed[end].k1 == keyed[start].k1 { end += 1 }
            if end - start > 1 {
                keyed[start..<end].sort { a, b in labels.compare(range(a.index), range(b.index)) < 0 }
            }
            start = end
        }
        order = keyed.map(\.index)
        self.labels = labels
        countsByParentType = counts
        self.infoLabels = infoLabels
        self.labelEnds = labelEnds
        self.infoEnds = infoEnds
        self.flagBits = flagBits
        self.referenceCounts = referenceCounts
    }

    var count: Int { order.count }

    /// Byte range of device `i`'s `{uuid,parent` labels in `labels`.
    func labelRange(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(labelEnds[i - 1]))..<Int(labelEnds[i]) }
    func infoRange(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(infoEnds[i - 1]))..<Int(infoEnds[i]) }
    func flags(_ i: Int) -> UInt8 { flagBits[i] }
    func references(_ i: Int) -> Int { Int(referenceCounts[i]) }
}

/// A (parent, mdev type) pair, the grain of `mdev_devices`.
struct ParentType: Hashable, Comparable {
    var parent: String
    var type: String

    static func < (a: Self, b: Self) -> Bool { (a.parent, a.type) < (b.parent, b.type) }
}
