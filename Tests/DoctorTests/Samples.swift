import Foundation
import Monitor

/// A fresh directory under the system temp dir.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mdevmon-doctor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Builders for index values (the subset of PolicyTests' `Sample` the doctor's checks need).
enum Sample {
    static let parent = "pci_0000_3b_00_0"
    static let otherParent = "pci_0000_af_00_0"
    static let type = "nvidia-63"

    static func uuid() -> String { UUID().uuidString.lowercased() }

    static func name(_ uuid: String, parent: String = parent) -> String {
        "mdev_" + uuid.replacingOccurrences(of: "-", with: "_") + "_" + parent.dropFirst(4)
    }

    static func device(_ uuid: String, parent: String = parent, type: String = type, active: Bool = false,
                       persistent: Bool = true, autostart: Bool = false) -> MdevDevice {
        MdevDevice(definition: MdevDefinition(name: name(uuid, parent: parent), uuid: uuid, parent: parent, parentAddress: nil,
                                              mdevType: type, iommuGroup: nil, attrs: []),
                   flags: DeviceFlags(active: active, persistent: persistent, autostart: autostart))
    }

    static func parentDevice(_ name: String = parent) -> ParentDevice {
        ParentDevice(name: name, kind: "pci", types: [
            MdevTypeInfo(id: type, name: "GRID", deviceAPI: "vfio-pci", availableInstances: 4)])
    }

    static func domain(_ name: String, uuids: [String], persistent: Bool = true, autostart: Bool = false) -> DomainInfo {
        DomainInfo(name: name, uuid: uuid(), active: false, persistent: persistent, autostart: autostart,
                   mdevUUIDs: uuids, liveMdevUUIDs: [])
    }
}

extension IndexState {
    /// A state with these devices, every parent they name, and these domains.
    static func with(_ devices: [MdevDevice], domains: [DomainInfo] = [], parents: [String]? = nil) -> IndexState {
        let names = parents ?? Array(Set(devices.map(\.parent))).sorted()
        return IndexState(devices: devices, parents: names.map { Sample.parentDevice($0) }, domains: domains)
    }
}
