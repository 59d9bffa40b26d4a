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
        case .domainAdded(let d) where !d.mdevUUIDs.isEmpty,
             .domainChanged(_, let d) where !d.mdevUUIDs.isEmpty:
            return ChangeLogEntry(
                event: .domainReferencesChanged, level: .info,
                message: "domain \(d.name) references mdevs [\(d.mdevUUIDs.joined(separator: ", "))]",
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
        ChangeLogEntry(
            event: event, level: level, message: message,
            metadata: [LogKey.mdevUUID: d.uuid, LogKey.mdevParent: d.parent, LogKey.mdevType: d.mdevType,
                       LogKey.mdevName: d.name])
    }
}

extension IndexChange {
    /// The entry for a device whose definition stopped or started matching its live state, beside
    /// `logEntry` (which tells the lifecycle): said once when it drifts and once when it is back in line.
    /// Drift that becomes unknown (libvirt stopped telling) or ends with the device's removal is not news.
    public var driftLogEntry: ChangeLogEntry? {
        let old: MdevDevice?, new: MdevDevice
        switch self {
        case .deviceAdded(let d): (old, new) = (nil, d)
        case .deviceChanged(let before, let after): (old, new) = (before, after)
        default: return nil
        }
        if new.drift == .drifted && old?.drift != .drifted, let defined = new.definedConfig {
            return entry(.definitionDrifted, .warning,
                         "mdev \(new.uuid) on \(new.parent) runs as \(new.liveConfig.words) but its definition now says \(defined.words); its next start applies the definition", new)
        }
        if old?.drift == .drifted && new.drift == .inSync {
            return entry(.definitionInSync, .notice,
                         "mdev \(new.uuid) on \(new.parent) runs with its definition again (\(new.active ? new.liveConfig.words : "stopped"))", new)
        }
        return nil
    }
}

extension MdevConfig {
    /// "type nvidia-63, attrs [a=1, b=2]" for log lines.
    public var words: String {
        "type \(mdevType)" + (attrs.isEmpty ? "" : ", attrs [\(attrs.map { "\($0.name)=\($0.value)" }.joined(separator: ", "))]")
    }
}

extension MdevDevice {
    /// "active, persistent, autostart" style summary for logs and tables.
    public var stateWords: String {
        [active ? "active" : "inactive", persistent ? "persistent" : "transient",
         autostart ? "autostart" : "manual"].joined(separator: ", ")
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
