import Foundation
import TestSupport
import Testing

/// The real `mdevmon run` in a child process with its own state directory, config file and port, so
/// it never collides with another test's daemon. Stopped (SIGTERM, then SIGKILL) by `stop()`.
final class TestDaemon: @unchecked Sendable {
    let process = Process()
    let dir: TemporaryDirectory
    let port: Int
    let stderrPath: String
    let configPath: String

    /// - Parameters:
    ///   - config: the YAML written to the config file (policies acting in dry-run by default, so a
    ///     test daemon never starts or creates devices it did not ask for).
    ///   - stateDir: a state directory that outlives this daemon (default: one inside its own folder).
    ///   - extra: more `run` flags (`--log.target` defaults to stderr unless given here).
    ///   - wrapper: a command line that execs the daemon as its last arguments (e.g. `unshare`).
    init(uri: String = LibvirtHost.uri, config: String = "dry_run: true\n", stateDir: String? = nil,
         extra: [String] = [], wrapper: [String] = []) throws {
        dir = try TemporaryDirectory()
        port = try Loopback.freePort()
        stderrPath = dir.path + "/stderr.log"
        configPath = dir.path + "/mdevmon.yaml"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        var args = [
            "run", "--connect", uri, "--state.dir", stateDir ?? dir.path + "/state", "--config.file", configPath,
            "--web.listen-address", "127.0.0.1:\(port)",
        ]
        if !extra.contains(where: { $0.hasPrefix("--log.target") }) { args += ["--log.target", "stderr"] }
        args += extra
        if let tool = wrapper.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(wrapper.dropFirst()) + [mdevmonBinary] + args
        } else {
            process.executableURL = URL(fileURLWithPath: mdevmonBinary)
            process.arguments = args
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var base: String { "http://127.0.0.1:\(port)" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The last lines of stderr, for failure messages.
    var stderrTail: String { stderr.split(separator: "\n").suffix(20).joined(separator: "\n") }

    /// `/metrics`, or nil while the daemon does not answer.
    func metrics() -> String? {
        let r = AlertingNet.get(base + "/metrics")
        return r.ok ? r.body : nil
    }

    /// The value of the sample line that starts with `series` (name and labels exactly as rendered).
    func value(_ series: String) -> Double? {
        guard let text = metrics() else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Waits until `/healthz` answers 200: connected to libvirt and synced.
    func waitUntilSynced(timeout: Duration = .seconds(30)) async -> Bool {
        await AlertingNet.poll(timeout: timeout, every: .milliseconds(100)) { AlertingNet.get(base + "/healthz").ok }
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    func stop() {
        AlertingProcess.stop([process])
        dir.remove()
    }
}
