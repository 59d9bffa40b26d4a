import Policy
import Testing

@Suite struct OwnershipTests {
    let a = "8a3f0c1e-1111-4222-8333-944455556666"
    let b = "0b1c2d3e-aaaa-4bbb-8ccc-dddddddddddd"
    let p1 = "pci_0000_3b_00_0", p2 = "pci_0000_af_00_0"

    func config(_ edit: (inout PolicyConfig.Ownership) -> Void) -> PolicyConfig {
        var c = PolicyConfig()
        edit(&c.ownership)
        return c
    }

    @Test func emptySelectorsOwnEverything() {
        let c = PolicyConfig()
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-63"))
        #expect(c.owns(uuid: b, parent: p2, mdevType: "i915-GVTg_V5_4"))
    }

    @Test func parentsSelectByParent() {
        let c = config { $0.parents = [p1] }
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: a, parent: p2, mdevType: "nvidia-63"))
    }

    @Test func mdevTypesSelectByType() {
        let c = config { $0.mdevTypes = ["nvidia-63", "nvidia-64"] }
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-64"))
        #expect(!c.owns(uuid: a, parent: p1, mdevType: "nvidia-65"))
    }

    @Test func uuidsSelectCaseInsensitively() {
        let c = config { $0.uuids = [a.uppercased()] }
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-63"))
        #expect(c.owns(uuid: a.uppercased(), parent: p1, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: b, parent: p1, mdevType: "nvidia-63"))
    }

    @Test func excludeAlwaysWinsCaseInsensitively() {
        let c = config {
            $0.uuids = [a, b]
            $0.excludeUUIDs = [b.uppercased()]
        }
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: b, parent: p1, mdevType: "nvidia-63"))
        #expect(!config { $0.excludeUUIDs = [a] }.owns(uuid: a.uppercased(), parent: p1, mdevType: "x"))
    }

    @Test func allSelectorsMustMatch() {
        let c = config {
            $0.parents = [p1]
            $0.mdevTypes = ["nvidia-63"]
            $0.uuids = [a]
        }
        #expect(c.owns(uuid: a, parent: p1, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: b, parent: p1, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: a, parent: p2, mdevType: "nvidia-63"))
        #expect(!c.owns(uuid: a, parent: p1, mdevType: "nvidia-64"))
    }

    @Test func parsedSelectorsApply() throws {
        let c = try PolicyConfig.parse("""
            ownership:
              parents: [\(p1)]
              exclude_uuids: [\(b.uppercased())]
            """, file: "o.yaml")
        #expect(c.owns(uuid: a, parent: p1, mdevType: "any"))
        #expect(!c.owns(uuid: b, parent: p1, mdevType: "any"))
        #expect(!c.owns(uuid: a, parent: p2, mdevType: "any"))
    }

    @Test func writeAccessOnlyWhenActing() {
        var c = PolicyConfig()
        #expect(c.needsWriteAccess)
        c.dryRun = true
        #expect(!c.needsWriteAccess)
        c.dryRun = false
        c.restore.enabled = false
        #expect(!c.needsWriteAccess)
    }
}
