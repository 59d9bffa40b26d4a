import ArgumentParser
import Doctor
import Foundation
import Policy

extension Mdevmon {
    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this host for what keeps mdevs (and mdevmon) from working, and say how to fix it.",
            discussion: """
                Checks libvirt (reachable, version, access, node-device driver), mdevctl and the udev rules that \
                start autostart mdevs at boot (every program they run must exist), the vfio and mdev kernel \
                modules, mdev parents, autostart or restore-owned mdevs without a parent, defined domains that \
                could not start now, and mdevmon's own service, state directory and configuration. Prints \
                PASS, WARN or FAIL per check with the fix. Exits 0 when all pass, 1 on a warning, 2 on a failure. \
                The daemon runs the same checks at start-up and on SIGHUP.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(name: .customLong("config.file"), help: ArgumentHelp("Policy configuration (YAML) to validate.", valueName: "path"))
        var configFile: String = PolicyConfig.defaultPath

        @Option(name: .customLong("state.dir"), help: ArgumentHelp("mdevmon's state directory, which must be writable.", valueName: "dir"))
        var stateDir: String = StateStore.defaultDirectory

        @Flag(help: "Print the findings as JSON.")
        var json = false

        func run() async throws {
            let (output, code) = HostDoctor.command(uri: connection.connect, configFile: configFile, stateDir: stateDir, json: json)
            FileHandle.standardOutput.write(output)
            if code != 0 { throw ExitCode(code) }
        }
    }
}
