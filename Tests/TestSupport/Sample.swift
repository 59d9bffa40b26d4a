import Foundation
public import Monitor

/// The defaults a test target builds its index values from: the parent a device sits on, its type, what
/// the parent offers. Each target names its host once (`enum Sample: SampleHost`), so a test says only
/// what it varies.
public protocol SampleHost {
    /// A device's parent when the test names none.
    static var parent: String { get }
    /// A device's mdev type, and the one type a parent offers.
    static var type: String { get }
    /// The offered type's name as the parent lists it.
    static var typeName: String { get }
    /// How many more instances a parent can create.
    static var available: Int { get }
    /// A definition's parent address (default: none, as for a device whose parent is not a PCI function).
    static var parentAddress: String? { get }
    /// A definition's IOMMU group (default: none).
    static var iommuGroup: Int? { get }
    /// A new domain's UUID (default: empty, so two builds of one domain compare equal).
    static func domainUUID() -> String
}

extension SampleHost {
    public static var typeName: String { type }
    public static var available: Int { 4 }
    public static var parentAddress: String? { nil }
    public static var iommuGroup: Int? { nil }
    public static func domainUUID() -> String { "" }

    /// A new random UUID, lower-case as libvirt prints it.
    public static func uuid() -> String { UUID().uuidString.lowercased() }

    /// libvirt's naming: `mdev_<uuid with underscores>_<parent without its pci_ prefix>`.
    public static func name(_ uuid: String, parent: String = parent) -> String {
        "mdev_\(uuid.replacing("-", with: "_"))_\(parent.hasPrefix("pci_") ? parent.dropFirst(4) : parent[...])"
    }

    public static func definition(
        _ uuid: String, parent: String = parent, name: String? = nil, type: String = type,
        parentAddress: String? = parentAddress, iommuGroup: Int? = iommuGroup, attrs: [MdevAttr] = []
    ) -> MdevDefinition {
        MdevDefinition(
            name: name ?? Self.name(uuid, parent: parent), uuid: uuid, parent: parent, parentAddress: parentAddress,
            mdevType: type, iommuGroup: iommuGroup, attrs: attrs)
    }

    public static func flags(active: Bool = false, persistent: Bool = true, autostart: Bool = false) -> DeviceFlags {
        DeviceFlags(active: active, persistent: persistent, autostart: autostart)
    }

    /// - Parameter domains: the domains whose inactive XML references the device.
    public static func device(
        _ uuid: String, parent: String = parent, type: String = type, iommuGroup: Int? = iommuGroup,
        active: Bool = false, persistent: Bool = true, autostart: Bool = false, attrs: [MdevAttr] = [],
        domains: [String] = []
    ) -> MdevDevice {
        MdevDevice(
            definition: definition(uuid, parent: parent, type: type, iommuGroup: iommuGroup, attrs: attrs),
            flags: flags(active: active, persistent: persistent, autostart: autostart), domains: domains)
    }

    /// A defined domain referencing `uuids`; `live` are the mdevs its live XML holds (it runs when there are
    /// any, or when `active`).
    public static func domain(
        _ name: String, uuids: [String], persistent: Bool = true, autostart: Bool = false, active: Bool = false,
        live: [String] = []
    ) -> DomainInfo {
        DomainInfo(name: name, uuid: domainUUID(), active: active || !live.isEmpty, persistent: persistent,
                   autostart: autostart, mdevUUIDs: uuids, liveMdevUUIDs: live)
    }

    /// A parent offering `type` only.
    public static func parentDevice(_ name: String = parent, available: Int = available, type: String = type) -> ParentDevice {
        ParentDevice(name: name, kind: "pci", types: [
            MdevTypeInfo(id: type, name: typeName, deviceAPI: "vfio-pci", availableInstances: available)])
    }

    /// A state with these devices, every parent they name (or `parents`), each offering `type`, and these
    /// domains.
    public static func state(_ devices: [MdevDevice], domains: [DomainInfo] = [], parents: [String]? = nil) -> IndexState {
        let names = parents ?? Array(Set(devices.map(\.parent))).sorted()
        return IndexState(devices: devices, parents: names.map { parentDevice($0) }, domains: domains)
    }
}
