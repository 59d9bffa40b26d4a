import Monitor
import TestSupport

/// Small hand-made values for index, change-log and listing tests: Intel GVT-g parents, fixed UUIDs, and
/// domains without a UUID, so two builds of one value compare equal.
enum Sample: SampleHost {
    static let uuidA = "11111111-1111-4111-8111-111111111111"
    static let uuidB = "22222222-2222-4222-8222-222222222222"
    static let uuidC = "33333333-3333-4333-8333-333333333333"
    static let gpu0 = "pci_0000_00_02_0"
    static let gpu1 = "pci_0000_00_03_0"

    static let parent = gpu0
    static let type = "i915-GVTg_V5_4"
    static let typeName = "GVTg_V5_4"
    static let available = 2
    static let iommuGroup: Int? = 0
}
