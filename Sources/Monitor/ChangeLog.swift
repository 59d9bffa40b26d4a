public import Logging

/// How an index change is told to an operator: which journal event, at which level, in which words.
public struct ChangeLogEntry: Hashable, Sendable {
    public var event: MessageID
    public var level: Logger.Level
    public var message: String
    public var metadata: [String: String]
}

extension IndexChange {
    /// The log entry for this change, or nil for changes not worth a line (parents' counters moving).
    ///
    /// Lifecycle words follow libvirt's: a device that becomes active was *created* (started), one
    /// that stops being active was *deleted* (destroyed), gaining or losing a definition is *defined*
    /// or *undefined*; anything else is *updated*.
    public var logEntry: ChangeLogEntry? {
        switch self {
        case .deviceAdded(let d):
            let event: MessageID = d.persistent ? .deviceDefined : .deviceCreated
            return entry(event, .info, "mdev \(d.uuid) \(d.persistent ? "defined" : "created") on \(d.parent) (\(d.stateWords))", d)
        case .deviceRemoved(let d):
            let event: MessageID = d.persistent ? .deviceUndefined : .deviceDeleted
            return entry(event, .info, "mdev \(d.uuid) \(d.persistent ? "undefined" : "deleted") on \(d.parent)", d)
        case .deviceChanged(let old, let new):
            let event: MessageID
            let what: String
            if !old.active && new.active {
                (event, what) = (.deviceCreated, "started")
            } else if old.active && !new.active {
                (event, what) = (.deviceDeleted, "stopped")
            } else if !old.persistent && new.persistent {
                (event, what) = (.deviceDefined, "defined")
            } else if old.persistent && !new.persistent {
                (event, what) = (.deviceUndefined, "undefined")
            } else if old.inUseBy != new.inUseBy {
                var users = new.inUseBy.isEmpty ? "released by [\(old.inUseBy.joined(separator: ", "))]; in use by no running domain"
                    : "now in use by running domain [\(new.inUseBy.joined(separator: ", "))]"
                // A transient domain started with it (`virsh create`) references and uses it in one change.
                if old.domains != new.domains { users += "; referenced by [\(new.domains.joined(separator: ", "))]" }
                (event, what) = (.deviceUseChanged, users)
            } else if old.domains != new.domains {
                (event, what) = (.domainReferencesChanged, "now referenced by [\(new.domains.joined(separator: ", "))]")
            } else {
                (event, what) = (.deviceUpdated, "updated")
            }
            return entry(event, .info, "mdev \(new.uuid) \(what) on \(new.parent) (\(new.stateWords))", new)
        case .domainAdded(let d) where !d.mdevUUIDs.isEmpty:
            return ChangeLogEntry(
                event: .domainReferencesChanged, level: .info,
                message: "domain \(d.name) references mdevs [\(d.mdevUUIDs.joined(separator: ", "))]",
                metadata: [LogKey.domainName: d.name])
        case .domainChanged(let old, let d) where old.mdevUUIDs != d.mdevUUIDs:
            return ChangeLogEntry(
                event: .domainReferencesChanged, level: .info,
                message: d.mdevUUIDs.isEmpty ? "domain \(d.name) no longer references mdevs (it referenced [\(old.mdevUUIDs.joined(separator: ", "))])"
                    : "domain \(d.name) references mdevs [\(d.mdevUUIDs.joined(separator: ", "))]",
                metadata: [LogKey.domainName: d.name])
        case .domainChanged(let old, let d) where !d.mdevUUIDs.isEmpty && old.stateWords != d.stateWords:
            // Its references did not change: a lifecycle change of a domain that uses mdevs has its own ID.
            return ChangeLogEntry(
                event: .domainStateChanged, level: .info,
                message: "domain \(d.name) is now \(d.stateWords) (references mdevs [\(d.mdevUUIDs.joined(separator: ", "))])",
                metadata: [LogKey.domainName: d.name])
        case .domainRemoved(let d) where !d.mdevUUIDs.isEmpty:
            return ChangeLogEntry(
                event: .domainReferencesChanged, level: .info,
                message: "domain \(d.name) removed; it referenced mdevs [\(d.mdevUUIDs.joined(separator: ", "))]",
                metadata: [LogKey.domainName: d.name])
        case .connection(.disconnected(let reason)):
            return ChangeLogEntry(
                event: .connectionLost, level: .warning,
                message: "libvirt connection lost: \(reason); index is stale until reconnect", metadata: [:])
        case .connection(.synced):
            return ChangeLogEntry(
                event: .connectionRestored, level: .notice, message: "libvirt connected and index synced",
                metadata: [:])
        default:
            return nil
        }
    }

    private func entry(_ event: MessageID, _ level: Logger.Level, _ message: String, _ d: MdevDevice) -> ChangeLogEntry {
        ChangeLogEntry(event: event, level: level, message: message, metadata: d.logFields)
    }
}

/// Tells the journal when a device's definition stops matching what it runs, and when it matches again:
/// once each way, whatever passed in between (an `unknown` while libvirt could not tell is neither news
/// nor an end). Remembers only the devices it said are drifted, so it stays as small as they are.
public struct DriftNarrator: Sendable {
    private var said: Set<MdevKey> = []

    public init() {}

    /// The entry `change` calls for, beside `IndexChange.logEntry` (which tells the lifecycle), if any.
    public mutating func entry(for change: IndexChange) -> ChangeLogEntry? {
        let device: MdevDevice
        switch change {
        case .deviceAdded(let d): device = d
        case .deviceChanged(let old, let new):
            if old.key != new.key { said.remove(old.key) }
            device = new
        case .deviceRemoved(let d):
            // Gone, and its definition with it: the removal's own entry says so.
            said.remove(d.key)
            return nil
        default: return nil
        }
        switch device.drift {
        case .drifted? where !said.contains(device.key):
            said.insert(device.key)
            // `drifted` means libvirt told the definition.
            let defined = device.definedConfig.map(\.words) ?? "something else"
            return ChangeLogEntry(
                event: .definitionDrifted, level: .warning,
                message: "mdev \(device.uuid) on \(device.parent) runs as \(device.liveConfig.words) but its definition now says \(defined); its next start applies the definition",
                metadata: device.logFields)
        case .inSync? where said.contains(device.key):
            said.remove(device.key)
            return ChangeLogEntry(
                event: .definitionInSync, level: .notice,
                message: "mdev \(device.uuid) on \(device.parent) runs with its definition again (\(device.active ? device.liveConfig.words : "stopped"))",
                metadata: device.logFields)
        case nil:
            // Undefined: no definition left to differ from (the undefine's own entry says so).
            said.remove(device.key)
            return nil
        default:
            return nil
        }
    }
}

extension MdevConfig {
    /// "type nvidia-63, attrs [a=1, b=2]" for log lines.
    public var words: String {
        "type \(mdevType)" + (attrs.isEmpty ? "" : ", attrs [\(attrs.map { "\($0.name)=\($0.value)" }.joined(separator: ", "))]")
    }
}

extension MdevDevice {
    /// The journal fields naming the device.
    var logFields: [String: String] {
        [LogKey.mdevUUID: uuid, LogKey.mdevParent: parent, LogKey.mdevType: mdevType, LogKey.mdevName: name]
    }

    /// "active, persistent, autostart" style summary for logs and tables.
    public var stateWords: String {
        [active ? "active" : "inactive", persistent ? "persistent" : "transient",
         autostart ? "autostart" : "manual"].joined(separator: ", ")
    }
}

extension DomainInfo {
    /// "running, persistent, autostart" style summary for logs.
    var stateWords: String {
        [active ? "running" : "shut off", persistent ? "persistent" : "transient", autostart ? "autostart" : "manual"]
            .joined(separator: ", ")
    }
}

extension Logger {
    /// Logs an index change's entry with its message ID and fields.
    public func log(_ entry: ChangeLogEntry) {
        var metadata = entry.event.metadata
        for (k, v) in entry.metadata { metadata[k] = .string(v) }
        log(level: entry.level, "\(entry.message)", metadata: metadata)
    }
}
