import HashTreeCollections
import Monitor

/// The families rendered from the index: what each says. `MetricsCache` decides when to render them.
extension MetricsRenderer {
    /// One line per device each, in (uuid, parent) order.
    static let deviceFamilies: [RowBlocks<MdevKey, MdevDevice>.Family] = [
        .init("mdev_device_active", type: .gauge, help: "Whether the mdev is active (created) now: 1 or 0.") {
            deviceSample("mdev_device_active", $0, value: $0.active ? 1 : 0, into: &$1)
        },
        .init("mdev_device_autostart", type: .gauge, help: "Whether libvirt starts the mdev at boot: 1 or 0.") {
            deviceSample("mdev_device_autostart", $0, value: $0.autostart ? 1 : 0, into: &$1)
        },
        .init("mdev_device_definition_drift", type: .gauge,
              help: "For each active persistent mdev, one-hot: in_sync (it runs with its definition), drifted (its next start applies another mdev type) or unknown (libvirt cannot tell: before 10.1, or attrs only a vendor callout reports).") { device, w in
            // Only where it can differ: an inactive mdev runs nothing (always in sync, three lines per
            // defined device at 10,000 for no answer), a transient one has no definition.
            guard device.active, let drift = device.drift else { return }
            for state in DefinitionDrift.allCases {
                w.beginSample("mdev_device_definition_drift")
                w.label("uuid", device.uuid)
                w.label("parent", device.parent)
                w.label("state", state.rawValue)
                w.endSample(state == drift ? 1 : 0)
            }
        },
        .init("mdev_device_domain_references", type: .gauge,
              help: "Number of domains whose persistent XML references the mdev's UUID.") {
            deviceSample("mdev_device_domain_references", $0, value: $0.domains.count, into: &$1)
        },
        .init("mdev_device_in_use", type: .gauge,
              help: "One series per running domain whose live XML holds the mdev (configured or hot-plugged); always 1.") { device, w in
            for domain in device.inUseBy {
                w.beginSample("mdev_device_in_use")
                w.label("uuid", device.uuid)
                w.label("parent", device.parent)
                w.label("domain", domain)
                w.endSample(1)
            }
        },
        .init("mdev_device_info", type: .gauge,
              help: "Metadata of each mdev libvirt knows (active or defined); always 1.") { device, w in
            w.beginSample("mdev_device_info")
            w.label("uuid", device.uuid)
            w.label("parent", device.parent)
            w.label("mdev_type", device.mdevType)
            w.label("name", device.name)
            w.label("iommu_group", device.definition.iommuGroup.map { String($0) } ?? "")
            w.endSample(1)
        },
        .init("mdev_device_persistent", type: .gauge,
              help: "Whether the mdev is defined (persistent) in libvirt: 1 or 0.") {
            deviceSample("mdev_device_persistent", $0, value: $0.persistent ? 1 : 0, into: &$1)
        },
    ]

    private static func deviceSample(_ name: String, _ device: MdevDevice, value: Int, into w: inout MetricsWriter) {
        w.beginSample(name)
        w.label("uuid", device.uuid)
        w.label("parent", device.parent)
        w.endSample(value)
    }

    /// `mdev_domain_device_info`: one series per (domain, referenced mdev UUID), by domain name.
    static let domainFamilies: [RowBlocks<String, DomainInfo>.Family] = [
        .init("mdev_domain_device_info", type: .gauge,
              help: "One series per mdev UUID a domain's persistent XML references; always 1.") { domain, w in
            for uuid in domain.mdevUUIDs.count > 1 ? domain.mdevUUIDs.sorted() : domain.mdevUUIDs {
                w.beginSample("mdev_domain_device_info")
                w.label("domain", domain.name)
                w.label("uuid", uuid)
                w.endSample(1)
            }
        },
    ]

    /// `mdev_devices` and the parent families: one line per (parent, mdev type), a few dozen on a
    /// large host, so they are rendered whole whenever a parent or a count changes.
    static func parentFamilies(
        _ parents: TreeDictionary<String, ParentDevice>, counts: [ParentType: StateCounts]
    ) -> [(name: String, chunks: [Chunk])] {
        let parents = parents.values.sorted { $0.name < $1.name }
        var w = MetricsWriter()
        var counts = counts
        for parent in parents {
            for type in parent.types {
                let key = ParentType(parent: parent.name, type: type.id)
                if counts[key] == nil { counts[key] = StateCounts() }
            }
        }
        // Both states for every (parent, type) offered or in use, so dashboards see zeros, not gaps.
        w.family("mdev_devices", type: .gauge,
                 help: "Number of mdevs by parent, type and state (active or inactive).")
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
            for (state, value) in [("active", count.active), ("inactive", count.inactive)] {
                w.beginSample("mdev_devices")
                w.label("parent", key.parent)
                w.label("mdev_type", key.type)
                w.label("state", state)
                w.endSample(value)
            }
        }

        w.family("mdev_parent_available_instances", type: .gauge,
                 help: "How many more mdevs of the type the parent can create now.")
        for parent in parents {
            for type in parent.types {
                w.beginSample("mdev_parent_available_instances")
                w.label("parent", parent.name)
                w.label("mdev_type", type.id)
                w.endSample(type.availableInstances)
            }
        }

        w.family("mdev_parent_type_info", type: .gauge,
                 help: "Each mdev type a parent device offers; always 1.")
        for parent in parents {
            for type in parent.types {
                w.beginSample("mdev_parent_type_info")
                w.label("parent", parent.name)
                w.label("mdev_type", type.id)
                w.label("name", type.name ?? "")
                w.label("device_api", type.deviceAPI)
                w.endSample(1)
            }
        }
        return w.takeFamilies().map { (name: $0.name, chunks: [Chunk($0.text, reused: true)]) }
    }
}
