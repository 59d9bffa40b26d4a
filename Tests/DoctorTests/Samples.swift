import Monitor
import TestSupport

/// Devices on NVIDIA parents, as in PolicyTests; every domain gets a UUID of its own.
enum Sample: SampleHost {
    static let parent = "pci_0000_3b_00_0"
    static let otherParent = "pci_0000_af_00_0"
    static let type = "nvidia-63"
    static let typeName = "GRID"

    static func domainUUID() -> String { uuid() }
}

extension IndexState {
    static func with(_ devices: [MdevDevice], domains: [DomainInfo] = [], parents: [String]? = nil) -> IndexState {
        Sample.state(devices, domains: domains, parents: parents)
    }
}
