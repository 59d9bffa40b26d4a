import Exporter
import Logging
import Monitor
import Synchronization

/// mdevmon's Monitor and Exporter running inside the bench, so event times can be taken at each
/// step: the callback (through `TimestampingConnector`), the `IndexChange`, and `/metrics`.
///
/// One exporter serves the whole run; each size gets a fresh `MonitorService` (so its first sync is
/// measured), and the exporter reads whichever is current.
final class InProcess: Sendable {
    let uri: String
    let timeline = Timeline()
    let logger: Logger
    private let monitor = Mutex<MonitorService?>(nil)
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let port = Mutex<Int?>(nil)

    init(uri: String, logger: Logger) {
        self.uri = uri
        self.logger = logger
    }

    /// The current monitor's snapshot, or an empty one between monitors.
    var snapshot: IndexSnapshot {
        monitor.withLock { $0 }?.index.snapshot ?? IndexSnapshot(state: IndexState(), status: MonitorStatus(uri: uri))
    }

    /// Starts the exporter on 127.0.0.1 (an ephemeral port). - Returns: The port.
    func startExporter() async throws -> Int {
        let configuration = ExporterConfiguration(
            listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], build: BuildInfo(version: "bench"))
        let exporter = try ExporterService(
            configuration: configuration, snapshot: { [self] in snapshot }, logger: logger,
            onListening: { [self] _, bound in port.withLock { $0 = bound } })
        let task = Task { [logger] in
            do { try await exporter.run() } catch { logger.error("in-process exporter: \(error)") }
        }
        tasks.withLock { $0.append(task) }
        for _ in 0..<1000 {
            if let bound = port.withLock({ $0 }) { return bound }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw BenchError("in-process exporter did not start listening")
    }

    /// Starts a fresh Monitor and waits for its first full sync. - Returns: Milliseconds from
    /// `run()` to `waitForFirstSync()` returning.
    func startMonitor() async -> Double {
        let index = DeviceIndex(uri: uri)
        let changes = await index.subscribe()
        let timeline = timeline
        let subscriber = Task {
            for await update in changes {
                for change in update.changes {
                switch change {
                case .deviceAdded(let d) where Fixture.isEventDevice(uuid: d.uuid):
                    timeline.mark("added:\(d.name)")
                case .deviceRemoved(let d) where Fixture.isEventDevice(uuid: d.uuid):
                    timeline.mark("removed:\(d.name)")
                default: break
                }
                }
            }
        }
        let service = MonitorService(
            configuration: MonitorConfiguration(uri: uri, readOnly: true),
            connector: TimestampingConnector(timeline: timeline), index: index, logger: logger)
        monitor.withLock { $0 = service }
        let start = Mono.now()
        let runner = Task { [logger] in
            do { try await service.run() } catch { logger.error("in-process monitor: \(error)") }
        }
        tasks.withLock { $0 += [runner, subscriber] }
        await service.waitForFirstSync()
        return Mono.ms(start, Mono.now())
    }

    /// Total libvirt events the current monitor has counted.
    var eventsSeen: Int { snapshot.status.events.values.reduce(0, +) }

    /// Stops the current monitor (its connection closes, its index finishes its subscribers).
    func stopMonitor() async {
        let running = tasks.withLock { tasks -> [Task<Void, Never>] in
            defer { tasks = Array(tasks.prefix(1)) }  // keep the exporter
            return Array(tasks.dropFirst())
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
        monitor.withLock { $0 = nil }
    }
}
