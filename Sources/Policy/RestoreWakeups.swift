import Monitor

/// What a parked restore waits for: a parent device to appear, any new device (a restore whose parent is
/// not known yet), or a configuration reload (a dry run or a device no longer owned).
enum RestoreWakeup: Hashable, Sendable {
    case parent(String)
    /// Woken by any new parent or device.
    case anyParent
    case reload
}

/// Where parked restores wait; signals come from the change consumer and from reloads.
typealias RestoreWakeups = AsyncWaiters<RestoreWakeup>

extension AsyncWaiters where Key == RestoreWakeup {
    /// A parent appeared: wakes its waiters and those waiting for any parent.
    func signal(parent: String) { signal { $0 == .parent(parent) || $0 == .anyParent } }
    /// A device appeared: wakes the waiters for a parent not known yet.
    func signalAnyParent() { signal { $0 == .anyParent } }
}
