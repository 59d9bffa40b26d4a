/// What a node device's XML turned out to be.
public enum ParsedNodeDevice: Hashable, Sendable {
    case mdev(MdevDefinition)
    case parent(ParentDevice)
    /// Neither an mdev nor a device offering mdev types: the index ignores it.
    case other(name: String)
}

/// A node-device or domain XML that lacks what mdevmon needs, naming the device and the missing field.
public struct XMLParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var object: String
    public var problem: String

    public init(object: String, problem: String) {
        self.object = object
        self.problem = problem
    }

    public var description: String { "\(object): \(problem)" }
}

/// Parses libvirt node-device XML (`virNodeDeviceGetXMLDesc`) into plain values.
public enum NodeDeviceXML {
    /// - Parameters:
    ///   - xml: the device's XML as libvirt returns it.
    ///   - fallbackName: the name libvirt listed the device under, used in errors when the XML has none.
    public static func parse(_ xml: String, fallbackName: String = "node device") throws(XMLParseError) -> ParsedNodeDevice {
        guard let doc = XPathDocument(xml) else {
            throw XMLParseError(object: fallbackName, problem: "node-device XML is not well-formed")
        }
        guard !doc.strings("/device").isEmpty else {
            throw XMLParseError(object: fallbackName, problem: "no <device> root element")
        }
        let name = doc.string("/device/name") ?? fallbackName
        if !doc.strings("/device/capability[@type='mdev']").isEmpty {
            return .mdev(try mdev(doc, name: name))
        }
        // mdev_types is nested inside the parent's own capability: pci, ap_matrix, css, …
        let kinds = doc.strings("/device/capability[capability[@type='mdev_types']]/@type")
        if let kind = kinds.first {
            return .parent(ParentDevice(name: name, kind: kind, types: mdevTypes(doc), driver: doc.string("/device/driver/name"),
                                        physicalFunction: physicalFunction(doc)))
        }
        return .other(name: name)
    }

    /// A PCI virtual function's physical function as `dddd:bb:ss.f`, or nil.
    private static func physicalFunction(_ doc: borrowing XPathDocument) -> String? {
        let address = "/device/capability[@type='pci']/capability[@type='phys_function']/address"
        guard let domain = doc.string("\(address)/@domain"), let bus = doc.string("\(address)/@bus"),
              let slot = doc.string("\(address)/@slot"), let function = doc.string("\(address)/@function") else { return nil }
        func hex(_ s: String, _ width: Int) -> String? {
            guard let n = Int(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16) else { return nil }
            let digits = String(n, radix: 16)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        guard let d = hex(domain, 4), let b = hex(bus, 2), let s = hex(slot, 2), let f = hex(function, 1) else { return nil }
        return "\(d):\(b):\(s).\(f)"
    }

    /// The type and attrs of an mdev's definition XML (`VIR_NODE_DEVICE_XML_INACTIVE`); nil when there is
    /// none or it is not an mdev's: the definition is then not known, which is never a difference.
    public static func config(ofDefinition xml: String?) -> MdevConfig? {
        guard let xml, case .mdev(let def)? = try? parse(xml) else { return nil }
        return MdevConfig(mdevType: def.mdevType, attrs: def.attrs)
    }

    private static func mdev(_ doc: borrowing XPathDocument, name: String) throws(XMLParseError) -> MdevDefinition {
        let cap = "/device/capability[@type='mdev']"
        guard let parent = doc.string("/device/parent") else {
            throw XMLParseError(object: name, problem: "mdev XML has no <parent>")
        }
        guard let uuid = doc.string("\(cap)/uuid") else {
            throw XMLParseError(object: name, problem: "mdev XML has no <uuid>")
        }
        guard let type = doc.string("\(cap)/type/@id") else {
            throw XMLParseError(object: name, problem: "mdev XML has no <type id=…>")
        }
        var group: Int?
        if let text = doc.string("\(cap)/iommuGroup/@number") {
            guard let number = Int(text) else {
                throw XMLParseError(object: name, problem: "iommuGroup number '\(text)' is not an integer")
            }
            group = number
        }
        let attrs = doc.map("\(cap)/attr") { field in
            MdevAttr(name: field("@name") ?? "", value: field("@value") ?? "")
        }
        return MdevDefinition(
            name: name, uuid: uuid.lowercased(), parent: parent,
            parentAddress: doc.string("\(cap)/parent_addr"), mdevType: type,
            iommuGroup: group, attrs: attrs)
    }

    private static func mdevTypes(_ doc: borrowing XPathDocument) -> [MdevTypeInfo] {
        doc.map("/device/capability/capability[@type='mdev_types']/type") { field in
            MdevTypeInfo(
                id: field("@id") ?? "",
                name: field("name"),
                deviceAPI: field("deviceAPI") ?? "",
                availableInstances: field("availableInstances").flatMap { Int($0) } ?? 0)
        }.filter { !$0.id.isEmpty }
    }
}

/// Parses a domain's inactive XML for the mdevs it references.
public enum DomainXML {
    /// The domain's name, UUID and referenced mdev UUIDs (unique, in document order, lower-case).
    public static func parse(_ xml: String, fallbackName: String = "domain") throws(XMLParseError) -> (name: String, uuid: String, mdevUUIDs: [String]) {
        guard let doc = XPathDocument(xml) else {
            throw XMLParseError(object: fallbackName, problem: "domain XML is not well-formed")
        }
        guard let name = doc.string("/domain/name") else {
            throw XMLParseError(object: fallbackName, problem: "domain XML has no <name>")
        }
        var seen = Set<String>()
        let uuids = doc.strings("/domain/devices/hostdev[@type='mdev']/source/address/@uuid")
            .map { $0.trimmingWhitespace().lowercased() }
            .filter { !$0.isEmpty && seen.insert($0).inserted }
        return (name, doc.string("/domain/uuid") ?? "", uuids)
    }
}
