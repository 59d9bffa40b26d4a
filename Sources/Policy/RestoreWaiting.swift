public import Monitor

/// A restore waiting, before its first attempt, for its parent to be able to host the device.
public struct RestoreWaiting: Hashable, Sendable, Comparable {
    public enum Reason: String, Hashable, Sendable {
        /// The parent device is not there (libvirt files the mdev under its placeholder parent).
        case parent
        /// The parent does not offer the device's type: its driver has not registered it (yet), or the parent
        /// device is not there (libvirt lists only parents that offer types, so the index cannot tell).
        case type
        /// The parent offers the type with no instance available.
        case instance
    }

    public var uuid: String
    public var parent: String
    public var mdevType: String
    public var reason: Reason

    public init(uuid: String, parent: String, mdevType: String, reason: Reason) {
        self.uuid = uuid
        self.parent = parent
        self.mdevType = mdevType
        self.reason = reason
    }

    public static func < (a: Self, b: Self) -> Bool { (a.uuid, a.parent) < (b.uuid, b.parent) }

    /// What the index says of the device's type on `parent`: nil when the parent offers it with an instance
    /// available, else `.type` (not offered, or no such parent: libvirt lists only parents that offer
    /// types) or `.instance` (none left).
    public static func typeReason(parent: String, mdevType: String, in state: IndexState) -> Reason? {
        guard let offered = state.parents[parent]?.types.first(where: { $0.id == mdevType }) else { return .type }
        return offered.availableInstances > 0 ? nil : .instance
    }

    /// The device as the index has it now, and the parent its restore waits for. A saved device on libvirt's
    /// placeholder parent takes the parent the index has for it; `unparented`: libvirt files it under the
    /// placeholder (its real parent is not there yet), so it waits for any parent.
    static func resolve(_ device: PersistedState.Device, in state: IndexState) -> (now: MdevDevice?, parent: String, unparented: Bool) {
        let now = state.current(device.key)
        let parent = device.parent == IndexState.placeholderParent ? (now?.parent ?? device.parent) : device.parent
        return (now, parent, parent == IndexState.placeholderParent || now?.parent == IndexState.placeholderParent)
    }

    /// What a restore of `device` waits for according to the index alone (as with `wait_for_type`, the
    /// default): nil when it can act (or the device is active already). A device libvirt files under its
    /// placeholder parent waits for the parent.
    public static func inIndex(_ device: PersistedState.Device, _ state: IndexState) -> RestoreWaiting? {
        let (now, parent, unparented) = resolve(device, in: state)
        if now?.active == true { return nil }
        let reason: Reason? = unparented ? .parent : typeReason(parent: parent, mdevType: device.mdevType, in: state)
        return reason.map { RestoreWaiting(uuid: device.uuid, parent: device.parent, mdevType: device.mdevType, reason: $0) }
    }

    /// `mdevmon list`'s table of the restores the daemon has pending (from its state file), with what
    /// each waits for in the index, as with `wait_for_type` (the default): `parent`, `type` (not offered
    /// yet), `instance` (none left), or `-` (the index lets it act: mdevmon is starting it, retrying,
    /// waiting out an autostart grace period, or holding it in a dry run or outside its ownership).
    public static func table(pending: [PersistedState.Device], state: IndexState) -> String {
        var rows = [["RESTORE_PENDING", "PARENT", "TYPE", "WAITING_FOR"]]
        for device in pending.sorted(by: { ($0.uuid, $0.parent) < ($1.uuid, $1.parent) }) {
            rows.append([device.uuid, device.parent, device.mdevType, inIndex(device, state)?.reason.rawValue ?? "-"])
        }
        return Listing.render(rows)
    }
}
