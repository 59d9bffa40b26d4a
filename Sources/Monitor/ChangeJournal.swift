public import Logging
public import ServiceLifecycle

/// Tells the journal about every index change, as a subscriber like Policy and the systemd status.
///
/// The first full sync is not narrated device by device (the Monitor logs one summary line for it), except
/// for devices found drifted from their definition; every later change, including a resync's difference
/// after a reconnect, gets its own entry.
public struct ChangeJournal: Service {
    private let index: DeviceIndex
    private let logger: Logger

    public init(index: DeviceIndex, logger: Logger) {
        self.index = index
        var logger = logger
        logger[metadataKey: LogKey.libvirtURI] = .string(index.snapshot.status.uri)
        self.logger = logger
    }

    public func run() async throws {
        let subscription = await index.subscribe()
        var initialSyncSeen = subscription.startedSynced
        var drift = DriftNarrator()
        var overflows = 0
        for await update in subscription.cancelOnGracefulShutdown() {
            if subscription.overflows > overflows {
                overflows = subscription.overflows
                logger.notice("the journal fell behind the index by more than \(subscription.capacity) changes; logging the difference instead")
            }
            for change in update.changes {
                // A device found drifted is news even in the first sync: nothing else would say it.
                let driftEntry = drift.entry(for: change)
                if !initialSyncSeen {
                    if case .connection(.synced) = change { initialSyncSeen = true }
                    if let driftEntry { logger.log(driftEntry) }
                    if case .connection(.disconnected) = change {} else { continue }
                }
                if let entry = change.logEntry { logger.log(entry) }
                if let driftEntry { logger.log(driftEntry) }
            }
        }
    }
}
