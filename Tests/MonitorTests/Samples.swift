@testable import Monitor

/// Small hand-made values for index, change-log and listing tests.
enum Sample {
    static let uuidA = "11111111-1111-4111-8111-111111111111"
    static let uuidB = "22222222-2222-4222-8222-222222222222"
    static let uuidC = "33333333-3333-4333-8333-333333333333"
    static let gpu0 = "pci_0000_00_02_0"
    static let gpu1 = "pci_0000_00_03_0"

    /// libvirt's naming: `mdev_<uuid with underscores>_<parent address>`.
    static func name(_ uuid: String, _ parent: String) -> String {
        "mdev_\(uuid.replacing("-", with: "_"))_\(parent.replacing("pci_", with: ""))"
    }

    static func definition(
        _ uuid: String, parent: String = gpu0, name: String? = nil, type: String = "i915-GVTg_V5_4",
        attrs: [MdevAttr] = []
    ) -> MdevDefinition {
        MdevDefinition(
            name: name ?? Self.name(uuid, parent), uuid: uuid, parent: parent, parentAddress: nil,
            mdevType: type, iommuGroup: 0, attrs: attrs)
    }

    static func flags(active: Bool = false, persistent: Bool = true, autostart: Bool = false) -> DeviceFlags {
        DeviceFlags(active: active, persistent: persistent, autostart: autostart)
    }

    static func device(
        _ uuid: String, parent: String = gpu0, active: Bool = false, persistent: Bool = true,
        autostart: Bool = false, domains: [String] = []
    ) -> MdevDevice {
        MdevDevice(
            definition: definition(uuid, parent: parent),
            flags: flags(active: active, persistent: persistent, autostart: autostart), domains: domains)
    }

    /// A defined domain; `live` are the mdevs its live XML holds (it runs when there are any, or when `active`).
    static func domain(_ name: String, _ uuids: [String], active: Bool = false, live: [String] = [],
                       persistent: Bool = true, autostart: Bool = false) -> DomainInfo {
        DomainInfo(name: name, uuid: "", active: active || !live.isEmpty, persistent: persistent, autostart: autostart,
                   mdevUUIDs: uuids, liveMdevUUIDs: live)
    }

    static func parent(_ name: String = gpu0, available: Int = 2) -> ParentDevice {
        ParentDevice(name: name, kind: "pci", types: [
            MdevTypeInfo(id: "i915-GVTg_V5_4", name: "GVTg_V5_4", deviceAPI: "vfio-pci", availableInstances: available),
        ])
    }
}
