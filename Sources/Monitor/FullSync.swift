import Foundation

/// Reads everything the index holds from one connection: every mdev (active and inactive), every
/// parent offering mdev types, every domain with its referenced mdev UUIDs.
public enum FullSync {
    /// The result of a sync: the state plus per-object problems (bad XML) that were skipped, and the objects
    /// libvirt listed but failed to give (left out of `state`; see `keepingLastKnown`).
    public struct Result: Sendable {
        public var state: IndexState
        public var problems: [XMLParseError]
        public var failures: [LibvirtObject: String] = [:]
    }

    /// `new` with the last known state of every object that failed to read (from `old`, where it was), so
    /// a sick device keeps its place in the index, marked, instead of vanishing until it reads again.
    public static func keepingLastKnown(_ failed: some Collection<LibvirtObject>, from old: IndexState, in new: IndexState) -> IndexState {
        var state = new
        for object in failed {
            switch object.kind {
            case .nodeDevice:
                if let device = old.device(named: object.name), state.device(named: object.name) == nil {
                    _ = state.upsertDevice(device.definition, flags: device.flags, definedConfig: device.definedConfig)
                } else if let parent = old.parents[object.name], state.parents[object.name] == nil {
                    _ = state.upsertParent(parent)
                }
            case .domain:
                if let domain = old.domains[object.name], state.domains[object.name] == nil {
                    _ = state.upsertDomain(domain)
                }
            }
        }
        return state
    }

    /// Reads at libvirt's own pace: one listing per device state and one XML RPC per device. The listing
    /// says active or inactive (and on libvirt ≥ 10.1 persistent or transient); an inactive mdev is
    /// persistent by definition; persistence, autostart and (≥ 10.1) an active device's definition
    /// otherwise come from mdevctl's definitions (where libvirt itself reads them) on a local connection,
    /// and only where those cannot answer (a remote libvirtd, no parent address) from per-device RPCs.
    /// - Parameter mdevctlRoot: mdevctl's configuration directory (tests point it elsewhere).
    /// - Parameter progress: called after each RPC (`LibvirtCalls` times each, not the whole sync).
    public static func read(from connection: any LibvirtConnection, progress: () -> Void = {}) throws -> Result {
        try read(from: connection, mdevctlRoot: MdevctlDefinitions.configRoot, progress: progress)
    }

    static func read(from connection: any LibvirtConnection, mdevctlRoot: String, progress: () -> Void = {}) throws -> Result {
        var problems: [XMLParseError] = []
        var failures: [LibvirtObject: String] = [:]
        // One object libvirt cannot read never fails the sync; a lost connection still does.
        func xmlFetched(_ name: String, _ error: LibvirtError?) {
            progress()
            if let error { failures[LibvirtObject(.nodeDevice, name)] = error.message }
        }
        func orFailed<T>(_ kind: LibvirtObject.Kind, _ name: String, _ read: () throws -> T?) throws -> T? {
            defer { progress() }
            do {
                return try read()
            } catch let error as LibvirtError where connection.isAlive {
                failures[LibvirtObject(kind, name)] = error.message
                return nil
            }
        }
        var devices: [MdevDevice] = []
        // No configuration directory at all: the files cannot answer for any device.
        let local = connection.isLocal && FileManager.default.fileExists(atPath: mdevctlRoot)
        let definitions = connection.version.readsDefinitions
        // Several listings: a device that changes state between them may be in none. Its lifecycle event
        // is queued since registration (before this sync), so the next fetch puts it back.
        let listings: [(active: Bool, persistent: Bool?)] = definitions
            ? [(true, true), (true, false), (false, nil)] : [(true, nil), (false, nil)]
        for (active, listedPersistent) in listings {
            for (name, xml) in try connection.listNodeDeviceXMLs(.mdevs, active: active, persistent: listedPersistent, fetched: xmlFetched) {
                do {
                    guard case .mdev(let definition) = try NodeDeviceXML.parse(xml, fallbackName: name) else { continue }
                    let persistent = active ? listedPersistent : true
                    if persistent == false {
                        devices.append(MdevDevice(definition: definition, flags: DeviceFlags(active: true, persistent: false, autostart: false)))
                        continue
                    }
                    let mdevctl = local ? MdevctlDefinitions.definition(of: definition, root: mdevctlRoot) : nil
                    // Only an active persistent device on libvirt ≥ 10.1 has a definition apart from its XML.
                    let wantsConfig = definitions && active
                    switch mdevctl {
                    case .defined(let autostart, let config)? where !wantsConfig || config != nil:
                        devices.append(MdevDevice(definition: definition, flags: DeviceFlags(active: active, persistent: true, autostart: autostart),
                                                  definedConfig: wantsConfig ? config : nil))
                    case MdevctlDefinitions.Definition.none? where active && persistent == nil:
                        devices.append(MdevDevice(definition: definition, flags: DeviceFlags(active: true, persistent: false, autostart: false)))
                    default:
                        // The files cannot answer (or an inactive device has no file yet): ask libvirt.
                        // Live state, flags and definition all from this one fetch, not partly from the listing.
                        guard let record = try orFailed(.nodeDevice, name, { try connection.nodeDevice(named: name) }),
                              case .mdev(let fetched) = try NodeDeviceXML.parse(record.xml, fallbackName: name) else { continue }
                        devices.append(MdevDevice(definition: fetched, flags: record.flags,
                                                  definedConfig: NodeDeviceXML.config(ofDefinition: record.definedXML)))
                    }
                } catch let error as XMLParseError { problems.append(error) }
            }
        }
        var parents: [ParentDevice] = []
        for (name, xml) in try connection.listNodeDeviceXMLs(.mdevParents, active: nil, persistent: nil, fetched: xmlFetched) {
            do {
                if case .parent(let parent) = try NodeDeviceXML.parse(xml, fallbackName: name) {
                    parents.append(parent)
                }
            } catch { problems.append(error) }
        }
        var domains: [DomainInfo] = []
        let domainNames = try connection.listDomains()
        progress()
        for name in domainNames {
            guard let record = try orFailed(.domain, name, { try connection.domain(named: name) }) else { continue }
            do {
                domains.append(try DomainInfo(record))
            } catch { problems.append(error) }
        }
        return Result(state: IndexState(devices: devices, parents: parents, domains: domains), problems: problems, failures: failures)
    }
}

extension DomainInfo {
    /// Builds a domain from a fetched record by parsing its inactive XML and, while it runs, its live XML.
    public init(_ record: DomainRecord) throws(XMLParseError) {
        let parsed = try DomainXML.parse(record.inactiveXML, fallbackName: record.name)
        let live = try record.liveXML.map { xml throws(XMLParseError) in
            try DomainXML.parse(xml, fallbackName: record.name).mdevUUIDs
        }
        self.init(
            name: record.name, uuid: parsed.uuid, active: record.active, persistent: record.persistent,
            autostart: record.autostart, mdevUUIDs: parsed.mdevUUIDs,
            liveMdevUUIDs: record.active ? live ?? [] : [])
    }
}
