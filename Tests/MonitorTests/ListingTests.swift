import Foundation
import Testing
@testable import Monitor

/// `Listing`: the one schema behind `mdevmon list` (table and `--json`) and `/api/v1/devices`.
@Suite struct ListingTests {
    /// Two devices (one referenced by two domains) and two parents, one type without a name.
    private func snapshot() -> IndexSnapshot {
        let gpu = MdevDevice(
            definition: MdevDefinition(
                name: Sample.name(Sample.uuidA, parent: Sample.gpu0), uuid: Sample.uuidA, parent: Sample.gpu0,
                parentAddress: "0000:00:02.0", mdevType: "i915-GVTg_V5_4", iommuGroup: 0,
                attrs: [MdevAttr(name: "testattr", value: "42"), MdevAttr(name: "testattr", value: "43")]),
            flags: Sample.flags(active: true, persistent: true, autostart: true))
        let ap = MdevDevice(
            definition: MdevDefinition(
                name: "mdev_22222222_2222_4222_8222_222222222222_matrix", uuid: Sample.uuidB, parent: "ap_matrix",
                parentAddress: nil, mdevType: "vfio_ap-passthrough", iommuGroup: nil, attrs: []),
            flags: Sample.flags(active: false, persistent: false, autostart: false))
        let parents = [
            ParentDevice(name: Sample.gpu0, kind: "pci", types: [
                MdevTypeInfo(id: "i915-GVTg_V5_4", name: nil, deviceAPI: "vfio-pci", availableInstances: 2),
            ]),
            ParentDevice(name: "ap_matrix", kind: "ap_matrix", types: [
                MdevTypeInfo(id: "vfio_ap-passthrough", name: "VFIO AP Passthrough Device", deviceAPI: "vfio-ap",
                             availableInstances: 65536),
            ]),
        ]
        let domains = [Sample.domain("vm2", uuids: [Sample.uuidA]), Sample.domain("vm1", uuids: [Sample.uuidA], live: [Sample.uuidA])]
        let state = IndexState(devices: [ap, gpu], parents: parents, domains: domains)
        return IndexSnapshot(state: state, status: MonitorStatus(uri: "test:///default"))
    }

    @Test func jsonRoundTripsWithSnakeCaseKeys() throws {
        let listing = Listing(snapshot())
        let data = listing.json()
        #expect(data.last == 0x0A)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(Listing.self, from: data) == listing)

        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        let parents = try #require(object["parents"] as? [[String: Any]])
        #expect(Set(devices[0].keys) == [
            "uuid", "parent", "parent_address", "name", "mdev_type", "iommu_group", "attrs", "active", "persistent",
            "autostart", "domains", "in_use_by", "drift",
        ])
        let types = try #require(parents[0]["types"] as? [[String: Any]])
        #expect(Set(types[0].keys) == ["id", "name", "device_api", "available_instances"])
    }

    @Test func listingIsSortedAndCarriesReferences() {
        let listing = Listing(snapshot())
        #expect(listing.devices.map(\.uuid) == [Sample.uuidA, Sample.uuidB])
        #expect(listing.devices[0].domains == ["vm1", "vm2"])
        #expect(listing.devices[0].inUseBy == ["vm1"])
        #expect(listing.devices[1].inUseBy == [])
        #expect(listing.devices[0].attrs.map(\.value) == ["42", "43"])
        #expect(listing.parents.map(\.name) == ["ap_matrix", Sample.gpu0])
    }

    @Test func exactJSONForOneDevice() throws {
        let device = MdevDevice(
            definition: Sample.definition(Sample.uuidC, attrs: [MdevAttr(name: "a", value: "1")]),
            flags: Sample.flags(active: true))
        let state = IndexState(
            devices: [device], parents: [Sample.parentDevice()],
            domains: [Sample.domain("vm1", uuids: [Sample.uuidC])])
        let text = String(decoding: Listing(IndexSnapshot(state: state, status: MonitorStatus(uri: "x"))).json(),
                          as: UTF8.self)
        #expect(text == """
            {
              "devices" : [
                {
                  "active" : true,
                  "attrs" : [
                    {
                      "name" : "a",
                      "value" : "1"
                    }
                  ],
                  "autostart" : false,
                  "domains" : [
                    "vm1"
                  ],
                  "drift" : "unknown",
                  "in_use_by" : [

                  ],
                  "iommu_group" : 0,
                  "mdev_type" : "i915-GVTg_V5_4",
                  "name" : "mdev_33333333_3333_4333_8333_333333333333_0000_00_02_0",
                  "parent" : "pci_0000_00_02_0",
                  "persistent" : true,
                  "uuid" : "33333333-3333-4333-8333-333333333333"
                }
              ],
              "parents" : [
                {
                  "kind" : "pci",
                  "name" : "pci_0000_00_02_0",
                  "types" : [
                    {
                      "available_instances" : 2,
                      "device_api" : "vfio-pci",
                      "id" : "i915-GVTg_V5_4",
                      "name" : "GVTg_V5_4"
                    }
                  ]
                }
              ]
            }

            """)
    }

    @Test func tableWithParents() {
        #expect(Listing(snapshot()).table(parents: true) == """
            UUID                                  PARENT            TYPE                 STATE     PERSISTENCE  AUTOSTART  DOMAINS  IN_USE_BY  DRIFT
            11111111-1111-4111-8111-111111111111  pci_0000_00_02_0  i915-GVTg_V5_4       active    persistent   yes        vm1,vm2  vm1        unknown
            22222222-2222-4222-8222-222222222222  ap_matrix         vfio_ap-passthrough  inactive  transient    no         -        -          -

            PARENT            KIND       TYPE                 NAME                        DEVICE_API  AVAILABLE
            ap_matrix         ap_matrix  vfio_ap-passthrough  VFIO AP Passthrough Device  vfio-ap     65536
            pci_0000_00_02_0  pci        i915-GVTg_V5_4       -                           vfio-pci    2

            """)
    }

    @Test func tableWithoutParents() {
        let empty = Listing(IndexSnapshot(state: IndexState(), status: MonitorStatus(uri: "x")))
        #expect(empty.table(parents: false) == "UUID  PARENT  TYPE  STATE  PERSISTENCE  AUTOSTART  DOMAINS  IN_USE_BY  DRIFT\n")
    }

    @Test func aDriftedDeviceShowsOneWordAndItsDefinitionInJSON() throws {
        let device = MdevDevice(definition: Sample.definition(Sample.uuidC, type: "mtty-1"), flags: Sample.flags(active: true),
                                definedConfig: MdevConfig(mdevType: "mtty-2", attrs: [MdevAttr(name: "a", value: "1")]))
        let listing = Listing(IndexSnapshot(state: IndexState(devices: [device], parents: [], domains: []), status: MonitorStatus(uri: "x")))
        let row = try #require(listing.table(parents: false).split(separator: "\n").last)
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).last == "drifted")
        let object = try #require(try JSONSerialization.jsonObject(with: listing.json()) as? [String: Any])
        let json = try #require((object["devices"] as? [[String: Any]])?.first)
        #expect(json["drift"] as? String == "drifted")
        let definition = try #require(json["definition"] as? [String: Any])
        #expect(definition["mdev_type"] as? String == "mtty-2")
        #expect((definition["attrs"] as? [[String: String]]) == [["name": "a", "value": "1"]])
    }
}
