import ArgumentParser
import Logging
import Monitor
import ServiceLifecycle

extension Mdevmon {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the daemon: watch libvirt events and keep the mdev index.",
            discussion: """
                Keeps retrying an unreachable libvirt with capped exponential backoff (0.5 s doubling to 30 s). \
                Stops gracefully on SIGTERM or SIGINT.
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .info
                return handler
            }
            let logger = Logger(label: "mdevmon")
            let monitor = MonitorService(
                configuration: MonitorConfiguration(uri: connection.connect, readOnly: true), logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: monitor)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
        }
    }
}
