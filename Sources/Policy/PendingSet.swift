import Monitor
import Synchronization

/// Devices whose restore is still in progress (kept in the state file until done).
final class PendingSet: Sendable {
    private let state: Mutex<[MdevKey: PersistedState.Device]>
    init(_ devices: [PersistedState.Device]) {
        state = Mutex(Dictionary(devices.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a }))
    }
    var count: Int { state.withLock { $0.count } }
    var devices: [PersistedState.Device] { state.withLock { Array($0.values) } }
    func insert(_ devices: [PersistedState.Device]) {
        state.withLock { for d in devices where $0[d.key] == nil { $0[d.key] = d } }
    }
    func remove(_ key: MdevKey) { _ = state.withLock { $0.removeValue(forKey: key) } }
}
