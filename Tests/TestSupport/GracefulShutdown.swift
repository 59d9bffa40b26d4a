public import ServiceLifecycle
import Logging
import Synchronization

/// Runs `service` alone in a `ServiceGroup`, waits until `ready()`, then triggers a graceful shutdown (what
/// SIGTERM does in the daemon).
/// - Returns: whether it got ready, and whether the group ended within `timeout` after the shutdown.
public func shutDownGracefully(
    _ service: some Service, once ready: @escaping @Sendable () -> Bool, within timeout: Duration = .seconds(5)
) async -> (ready: Bool, ended: Bool) {
    let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test.group") { _ in SwiftLogNoOpLogHandler() }))
    let finished = Atomic(false)
    let runner = Task {
        try? await group.run()
        finished.store(true, ordering: .sequentiallyConsistent)
    }
    defer { runner.cancel() }
    let wasReady = await eventually { ready() }
    await group.triggerGracefulShutdown()
    let ended = await eventually(timeout: timeout) { finished.load(ordering: .sequentiallyConsistent) }
    return (wasReady, ended)
}
