public import Logging
public import ServiceLifecycle
import UnixSignals

/// Reloads the configuration file on SIGHUP. An invalid file keeps the old configuration.
public struct ConfigReloadService: Service {
    let path: String
    let policy: PolicyService
    let onReload: @Sendable (PolicyConfig) async -> Void
    let afterSignal: @Sendable () async -> Void
    let logger: Logger

    /// - Parameters:
    ///   - onReload: called after a successful reload (e.g. to tell systemd).
    ///   - afterSignal: called after every SIGHUP, whether the reload succeeded or not (the host checks).
    public init(path: String, policy: PolicyService, logger: Logger,
                onReload: @escaping @Sendable (PolicyConfig) async -> Void = { _ in },
                afterSignal: @escaping @Sendable () async -> Void = {}) {
        self.path = path
        self.policy = policy
        self.logger = logger
        self.onReload = onReload
        self.afterSignal = afterSignal
    }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                let new = try PolicyConfig.load(path: path)
                let old = policy.currentConfig
                policy.update(config: new)
                policy.metrics.recordReload(success: true)
                if new.needsWriteAccess && !old.needsWriteAccess {
                    logger.warning("reloaded \(path): acting policies now enabled, but the libvirt connection stays read-only until mdevmon restarts")
                } else {
                    logger.notice("reloaded configuration \(path)")
                }
                await onReload(new)
            } catch {
                policy.metrics.recordReload(success: false, error: "\(error)")
                logger.error("reload of \(path) failed, keeping the previous configuration: \(error)")
            }
            await afterSignal()
        }
    }
}
