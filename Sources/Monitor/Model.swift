/// Identifies one mediated device. libvirt ≥ 7.7 allows the same UUID under two parents, so the
/// parent's node-device name is part of the key.
public struct MdevKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var uuid: String
    public var parent: String

    public init(uuid: String, parent: String) {
        self.uuid = uuid
        self.parent = parent
    }

    public static func < (a: MdevKey, b: MdevKey) -> Bool {
        (a.uuid, a.parent) < (b.uuid, b.parent)
    }

    public var description: String { "\(uuid)@\(parent)" }
}

/// One `<attr name= value=/>` of an mdev; order matters to the vendor driver, so attrs stay an array.
public struct MdevAttr: Hashable, Sendable, Codable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// What libvirt's node-device XML says about one mdev, before the flags libvirt reports separately.
public struct MdevDefinition: Hashable, Sendable {
    public var name: String
    public var uuid: String
    public var parent: String
    public var parentAddress: String?
    public var mdevType: String
    public var iommuGroup: Int?
    public var attrs: [MdevAttr]

    public init(
        name: String, uuid: String, parent: String, parentAddress: String?, mdevType: String,
        iommuGroup: Int?, attrs: [MdevAttr]
    ) {
        self.name = name
        self.uuid = uuid
        self.parent = parent
        self.parentAddress = parentAddress
        self.mdevType = mdevType
        self.iommuGroup = iommuGroup
        self.attrs = attrs
    }

    public var key: MdevKey { MdevKey(uuid: uuid, parent: parent) }
}

/// The lifecycle flags libvirt reports next to the XML (`virNodeDeviceIsActive` and friends).
public struct DeviceFlags: Hashable, Sendable {
    public var active: Bool
    public var persistent: Bool
    public var autostart: Bool

    public init(active: Bool, persistent: Bool, autostart: Bool) {
        self.active = active
        self.persistent = persistent
        self.autostart = autostart
    }
}

/// An mdev's type and attrs: what its live state has, or what its definition makes the next start apply.
public struct MdevConfig: Hashable, Sendable {
    public var mdevType: String
    public var attrs: [MdevAttr]

    public init(mdevType: String, attrs: [MdevAttr]) {
        self.mdevType = mdevType
        self.attrs = attrs
    }
}

/// Whether an active persistent mdev runs what its definition says: a `nodedev-update --config` (libvirt
/// ≥ 10.1) changes the definition of a running device, and only its next start applies it.
public enum DefinitionDrift: String, Hashable, Sendable, CaseIterable {
    /// The live state is the definition (always so for an inactive mdev: it has no live state).
    case inSync = "in_sync"
    /// The next start applies another type than the device runs with now.
    case drifted
    /// Nobody can tell: before 10.1 libvirt's live XML shows the definition's type and attrs, not the
    /// device's; and mdevctl reports a running device's attrs only through a vendor callout, in the
    /// callout's own spelling (vfio-ap's turns `"5"` into `0x5`, sorted), so attrs that differ from the
    /// definition, or are not reported at all, are no proof of a difference.
    case unknown

    /// Compares an active device's live state with its definition; nil definition: libvirt did not say.
    /// Only a different type is a certain drift; equal attrs are certainly in sync.
    public static func compare(live: MdevConfig, defined: MdevConfig?) -> DefinitionDrift {
        guard let defined else { return .unknown }
        if live.mdevType != defined.mdevType { return .drifted }
        return live.attrs == defined.attrs ? .inSync : .unknown
    }
}

/// One mdev as the index holds it.
public struct MdevDevice: Hashable, Sendable {
    public var definition: MdevDefinition
    public var flags: DeviceFlags
    /// What the definition of an active persistent mdev makes its next start apply, as libvirt ≥ 10.1 says
    /// (`VIR_NODE_DEVICE_XML_INACTIVE`, or mdevctl's file it reads); nil when not read (older libvirt,
    /// inactive or transient devices).
    public var definedConfig: MdevConfig?
    /// Names of the domains whose inactive XML references this device's UUID, sorted.
    public var domains: [String]
    /// Names of the running domains whose live XML holds this device's UUID now (configured or
    /// hot-plugged), sorted. An mdev serves one VM at a time, so more than one is a transient state.
    public var inUseBy: [String]

    public init(definition: MdevDefinition, flags: DeviceFlags, definedConfig: MdevConfig? = nil, domains: [String] = [],
                inUseBy: [String] = []) {
        self.definition = definition
        self.flags = flags
        self.definedConfig = flags.active && flags.persistent ? definedConfig : nil
        self.domains = domains
        self.inUseBy = inUseBy
    }

    public var key: MdevKey { definition.key }
    public var uuid: String { definition.uuid }
    public var parent: String { definition.parent }
    public var name: String { definition.name }
    public var mdevType: String { definition.mdevType }
    public var active: Bool { flags.active }
    public var persistent: Bool { flags.persistent }
    public var autostart: Bool { flags.autostart }
    /// The live type and attrs libvirt reports.
    public var liveConfig: MdevConfig { MdevConfig(mdevType: mdevType, attrs: definition.attrs) }

    /// Whether the next start applies what the device runs with now; nil for a transient mdev (no definition).
    public var drift: DefinitionDrift? {
        guard persistent else { return nil }
        guard active else { return .inSync }
        return DefinitionDrift.compare(live: liveConfig, defined: definedConfig)
    }
}

/// One mdev type a parent offers (`<capability type='mdev_types'><type id=…>`).
public struct MdevTypeInfo: Hashable, Sendable {
    public var id: String
    public var name: String?
    public var deviceAPI: String
    public var availableInstances: Int

    public init(id: String, name: String?, deviceAPI: String, availableInstances: Int) {
        self.id = id
        self.name = name
        self.deviceAPI = deviceAPI
        self.availableInstances = availableInstances
    }
}

/// A node device that can host mdevs: a PCI GPU, `ap_matrix`, a CSS device, `mtty_mtty`, …
public struct ParentDevice: Hashable, Sendable {
    public var name: String
    /// The capability that carries `mdev_types`: `pci`, `ap_matrix`, `css`, …
    public var kind: String
    public var types: [MdevTypeInfo]
    /// The kernel driver bound to it (`<driver><name>`): nvidia, i915, vfio_ap, mdev_edu, …
    public var driver: String?
    /// An SR-IOV virtual function's physical function (`<capability type='phys_function'><address>`, as
    /// `0000:3b:00.0`): the VFs of one GPU share its pool of instances.
    public var physicalFunction: String?

    public init(name: String, kind: String, types: [MdevTypeInfo], driver: String? = nil, physicalFunction: String? = nil) {
        self.name = name
        self.kind = kind
        self.types = types
        self.driver = driver
        self.physicalFunction = physicalFunction
    }

    /// Which PCI parents may share a pool of instances with this one (an mdev on one changes what the
    /// others have available, and libvirt says nothing of them): the VFs of one physical function, else the
    /// PCI devices bound to one driver. nil for other kinds (`ap_matrix` is alone; CSS subchannels share none).
    public var pool: String? {
        guard kind == "pci" else { return nil }
        if let physicalFunction { return "pf \(physicalFunction)" }
        return driver.map { "driver \($0)" }
    }
}

/// A libvirt domain, the mdev UUIDs its configuration references and those it uses while it runs.
public struct DomainInfo: Hashable, Sendable {
    public var name: String
    public var uuid: String
    public var active: Bool
    public var persistent: Bool
    public var autostart: Bool
    /// mdev UUIDs from `<hostdev type='mdev'><source><address uuid=…/>` of the inactive (configuration)
    /// XML, in document order, unique.
    public var mdevUUIDs: [String]
    /// The same from the live XML while the domain runs (hot-plugged mdevs included); empty when shut off.
    public var liveMdevUUIDs: [String]

    public init(
        name: String, uuid: String, active: Bool, persistent: Bool, autostart: Bool,
        mdevUUIDs: [String], liveMdevUUIDs: [String] = []
    ) {
        self.name = name
        self.uuid = uuid
        self.active = active
        self.persistent = persistent
        self.autostart = autostart
        self.mdevUUIDs = mdevUUIDs
        self.liveMdevUUIDs = liveMdevUUIDs
    }
}
