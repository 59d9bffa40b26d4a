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
}
