public import Foundation

/// The index as `mdevmon list --json` and `/api/v1/devices` print it: one schema for both.
public struct Listing: Codable, Hashable, Sendable {
    public struct Device: Codable, Hashable, Sendable {
        public var uuid: String
        public var parent: String
        public var parentAddress: String?
        public var name: String
        public var mdevType: String
        public var iommuGroup: Int?
        public var attrs: [MdevAttr]
        public var active: Bool
        public var persistent: Bool
        public var autostart: Bool
        /// Domains whose configuration references the device.
        public var domains: [String]
        /// Running domains whose live XML holds the device now.
        public var inUseBy: [String]
        /// `in_sync`, `drifted` or `unknown` (`DefinitionDrift`); absent for a transient device.
        public var drift: String?
        /// What an active persistent device's next start applies, where libvirt (≥ 10.1) says.
        public var definition: Definition?
    }

    public struct Definition: Codable, Hashable, Sendable {
        public var mdevType: String
        public var attrs: [MdevAttr]
    }

    public struct MdevType: Codable, Hashable, Sendable {
        public var id: String
        public var name: String?
        public var deviceAPI: String
        public var availableInstances: Int

        // "deviceApi" encodes to the same "device_api" and is what `.convertFromSnakeCase` decodes it
        // back to; the default "deviceAPI" would not round-trip.
        private enum CodingKeys: String, CodingKey {
            case id, name, availableInstances
            case deviceAPI = "deviceApi"
        }
    }

    public struct Parent: Codable, Hashable, Sendable {
        public var name: String
        public var kind: String
        public var types: [MdevType]
    }

    public var devices: [Device]
    public var parents: [Parent]

    public init(_ snapshot: IndexSnapshot) {
        devices = snapshot.sortedDevices.map { d in
            Device(uuid: d.uuid, parent: d.parent, parentAddress: d.definition.parentAddress, name: d.name,
                   mdevType: d.mdevType, iommuGroup: d.definition.iommuGroup, attrs: d.definition.attrs,
                   active: d.active, persistent: d.persistent, autostart: d.autostart, domains: d.domains,
                   inUseBy: d.inUseBy, drift: d.drift?.rawValue,
                   definition: d.definedConfig.map { Definition(mdevType: $0.mdevType, attrs: $0.attrs) })
        }
        parents = snapshot.sortedParents.map { p in
            Parent(name: p.name, kind: p.kind, types: p.types.map {
                MdevType(id: $0.id, name: $0.name, deviceAPI: $0.deviceAPI, availableInstances: $0.availableInstances)
            })
        }
    }

    /// Pretty, key-sorted JSON with snake_case keys, ending in a newline.
    public func json() -> Data { Self.json(self) }

    /// The listings' one JSON style (devices here, domains in Policy).
    public static func json(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Encoding plain structs of strings, ints and bools cannot fail.
        var data = try! encoder.encode(value)
        data.append(0x0A)
        return data
    }

    /// A fixed-width text table of devices, and of parents' capacity when `parents` is set.
    public func table(parents showParents: Bool) -> String {
        var rows = [["UUID", "PARENT", "TYPE", "STATE", "PERSISTENCE", "AUTOSTART", "DOMAINS", "IN_USE_BY", "DRIFT"]]
        for d in devices {
            // A drifted device names what its next start applies.
            // One word, so the table stays split-able on spaces; the definition is in the JSON.
            let drift = d.drift ?? "-"
            rows.append([d.uuid, d.parent, d.mdevType, d.active ? "active" : "inactive",
                         d.persistent ? "persistent" : "transient", d.autostart ? "yes" : "no",
                         d.domains.isEmpty ? "-" : d.domains.joined(separator: ","),
                         d.inUseBy.isEmpty ? "-" : d.inUseBy.joined(separator: ","), drift])
        }
        var out = Self.render(rows)
        if showParents {
            var prows = [["PARENT", "KIND", "TYPE", "NAME", "DEVICE_API", "AVAILABLE"]]
            for p in parents {
                for t in p.types {
                    prows.append([p.name, p.kind, t.id, t.name ?? "-", t.deviceAPI, String(t.availableInstances)])
                }
            }
            out += "\n" + Self.render(prows)
        }
        return out
    }

    /// Left-aligned columns two spaces apart; the last column is not padded.
    public static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { col in rows.map { $0[col].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
