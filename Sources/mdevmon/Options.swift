import ArgumentParser
import Exporter
import Logging
import Systemd

// Flags parse through the modules' own parsers (`transform:`), so a bad value gets the module's
// message naming the allowed values.

/// Logging flags shared by the daemon.
struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log.target"), help: ArgumentHelp(
        "Where logs go: journal, stderr or auto.",
        discussion: "auto writes to the journal when /run/systemd/journal/socket exists, else to stderr."),
        transform: { try LogTarget(parsing: $0) })
    var target: LogTarget = .auto

    @Option(name: .customLong("log.level"), help: "Minimum level: trace, debug, info, notice, warning, error, critical.",
            transform: { try Logger.Level(parsing: $0) })
    var level: Logger.Level = .info

    @Option(name: .customLong("log.format"), help: "stderr line format: logfmt or json.",
            transform: { try LogFormat(parsing: $0) })
    var format: LogFormat = .logfmt

    func bootstrap() {
        LoggingSystem.bootstrap(LoggingBootstrap.makeHandlerFactory(target: target, format: format, level: level))
    }
}
