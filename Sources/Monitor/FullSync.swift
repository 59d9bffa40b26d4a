/// Reads everything the index holds from one connection: every mdev (active and inactive), every
/// parent offering mdev types, every domain with its referenced mdev UUIDs.
public enum FullSync {
    /// The result of a sync: the state plus per-object problems (bad XML) that were skipped.
    public struct Result: Sendable {
        public var state: IndexState
        public var problems: [XMLParseError]
    }

    public static func read(from connection: any LibvirtConnection) throws -> Result {
        var problems: [XMLParseError] = []
        var devices: [MdevDevice] = []
        for name in try connection.listNodeDevices(.mdevs) {
            guard let record = try connection.nodeDevice(named: name) else { continue }
            do {
                if case .mdev(let definition) = try NodeDeviceXML.parse(record.xml, fallbackName: name) {
                    devices.append(MdevDevice(definition: definition, flags: record.flags))
                }
            } catch { problems.append(error) }
        }
        var parents: [ParentDevice] = []
        for name in try connection.listNodeDevices(.mdevParents) {
            guard let record = try connection.nodeDevice(named: name) else { continue }
            do {
                if case .parent(let parent) = try NodeDeviceXML.parse(record.xml, fallbackName: name) {
                    parents.append(parent)
                }
            } catch { problems.append(error) }
        }
        var domains: [DomainInfo] = []
        for name in try connection.listDomains() {
            guard let record = try connection.domain(named: name) else { continue }
            do {
                domains.append(try DomainInfo(record))
            } catch { problems.append(error) }
        }
        return Result(state: IndexState(devices: devices, parents: parents, domains: domains), problems: problems)
    }
}

extension DomainInfo {
    /// Builds a domain from a fetched record by parsing its inactive XML.
    public init(_ record: DomainRecord) throws(XMLParseError) {
        let parsed = try DomainXML.parse(record.inactiveXML, fallbackName: record.name)
        self.init(
            name: record.name, uuid: parsed.uuid, active: record.active, persistent: record.persistent,
            autostart: record.autostart, mdevUUIDs: parsed.mdevUUIDs)
    }
}
