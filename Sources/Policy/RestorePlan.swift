public import Monitor

/// One device the restore policy will bring back.
public struct RestoreTask: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// `virNodeDeviceCreate` on the defined device of this name.
        case start(name: String)
        /// `virNodeDeviceCreateXML` with this definition (transient device).
        case recreate(xml: String)
    }

    public enum Reason: String, Hashable, Sendable {
        /// Active before the reboot, inactive now.
        case wasActive = "was active before the reboot"
        /// Autostart is on but the device did not come up (mdevctl's udev rule failed or raced).
        case autostart = "autostart did not start it"
        /// A transient device that was active before the reboot.
        case transient = "transient device was active before the reboot"
    }

    public var device: PersistedState.Device
    public var kind: Kind
    public var reason: Reason

    public var action: String {
        switch kind {
        case .start: "start"
        case .recreate: "create"
        }
    }
}

/// Decides what to restore after a reboot. Pure: the same inputs give the same plan.
public enum RestorePlanner {
    /// - Parameters:
    ///   - previous: the state saved before the reboot.
    ///   - state: the index after the first full sync of this boot.
    /// - Returns: tasks in key order, and owned devices from before the reboot that were skipped, with why.
    ///   - includeAutostart: also start inactive autostart devices (after a reboot, not when resuming).
    public static func plan(previous: PersistedState, state: IndexState, config: PolicyConfig,
                            includeAutostart: Bool = true) -> (tasks: [RestoreTask], skipped: [(PersistedState.Device, String)]) {
        var tasks: [MdevKey: RestoreTask] = [:]
        var skipped: [(PersistedState.Device, String)] = []
        for saved in previous.active where config.owns(uuid: saved.uuid, parent: saved.parent, mdevType: saved.mdevType) {
            let now = state.current(saved)
            if now?.active == true { continue }
            if !state.domainsUsing(saved.uuid).isEmpty {
                skipped.append((saved, "a running domain uses it"))
                continue
            }
            if saved.persistent {
                guard let now, now.persistent else {
                    skipped.append((saved, "its definition no longer exists"))
                    continue
                }
                tasks[saved.key] = RestoreTask(device: saved, kind: .start(name: now.name), reason: .wasActive)
            } else if config.restore.recreateTransient {
                tasks[saved.key] = RestoreTask(device: saved, kind: .recreate(xml: createXML(saved)), reason: .transient)
            } else {
                skipped.append((saved, "transient and recreate_transient is off"))
            }
        }
        for device in state.devices.values where includeAutostart && device.persistent && device.autostart && !device.active
            && !tasks.keys.contains(where: { $0.uuid == device.uuid }) && device.inUseBy.isEmpty
            && config.owns(uuid: device.uuid, parent: device.parent, mdevType: device.mdevType) {
            tasks[device.key] = RestoreTask(device: PersistedState.Device(device), kind: .start(name: device.name), reason: .autostart)
        }
        return (tasks.values.sorted { $0.device.key < $1.device.key }, skipped)
    }

    /// Node-device XML that re-creates a transient mdev with the same UUID, parent, type and attrs.
    public static func createXML(_ d: PersistedState.Device) -> String {
        var xml = "<device>\n  <parent>\(escape(d.parent))</parent>\n  <capability type='mdev'>\n"
        xml += "    <type id='\(escape(d.mdevType))'/>\n    <uuid>\(escape(d.uuid))</uuid>\n"
        for attr in d.attrs {
            xml += "    <attr name='\(escape(attr.name))' value='\(escape(attr.value))'/>\n"
        }
        return xml + "  </capability>\n</device>\n"
    }

    private static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension IndexState {
    /// The device a saved entry refers to now (see `current(_: MdevKey)`).
    public func current(_ saved: PersistedState.Device) -> MdevDevice? { current(saved.key) }
}
