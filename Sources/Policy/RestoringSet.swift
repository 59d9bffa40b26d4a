import Monitor
import Synchronization

/// The devices whose restore is under way: waiting for a parent, in the autostart grace period, or
/// retrying; not parked (dry run, not owned) and not ended. A domain that references one of them is
/// blocked by `restoring`, which is news, not an alarm.
final class RestoringSet: Sendable {
    private let keys = Mutex<[String: Set<MdevKey>]>([:])

    init() {}

    /// - Returns: true when the UUID entered the set.
    @discardableResult
    func insert(_ key: MdevKey) -> Bool {
        keys.withLock { k -> Bool in
            let was = k[key.uuid] != nil
            k[key.uuid, default: []].insert(key)
            return !was
        }
    }

    /// - Returns: true when the UUID left the set.
    @discardableResult
    func remove(_ key: MdevKey) -> Bool {
        keys.withLock { k -> Bool in
            guard k[key.uuid]?.remove(key) != nil else { return false }
            if k[key.uuid]!.isEmpty { k[key.uuid] = nil; return true }
            return false
        }
    }

    func contains(uuid: String) -> Bool { keys.withLock { $0[uuid] != nil } }
}
