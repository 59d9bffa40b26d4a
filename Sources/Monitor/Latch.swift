import Synchronization

/// A one-shot latch: waiters resume once `signal()` has been called, or when their task is cancelled
/// (without that, a service in the group would hang shutdown while libvirt is down).
package final class Latch: Sendable {
    private let done = Atomic(false)
    private let waiters = AsyncWaiters<Unkeyed>()

    package init() {}

    package var isDone: Bool { done.load(ordering: .acquiring) }

    package func signal() {
        done.store(true, ordering: .releasing)
        waiters.signalAll()
    }

    package func wait() async {
        let token = waiters.register()
        if isDone { waiters.cancel(token); return }
        await waiters.wait(token)
    }
}
