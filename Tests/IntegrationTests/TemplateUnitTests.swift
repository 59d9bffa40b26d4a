import Foundation
import TestSupport
import Testing

/// `deploy/mdevmon@.service`, one instance per remote libvirt host: systemd accepts an instance, the
/// template keeps mdevmon.service's sandbox but runs as the mdevmon user, and its command line,
/// expanded as systemd expands it from the shipped example environment file, runs mdevmon.
@Suite(.enabled(if: LibvirtHost.required || FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"),
                "needs systemd-analyze (CI=true makes this mandatory)"))
struct TemplateUnitTests {
    static let template = AlertingStack.repo + "/deploy/mdevmon@.service"
    static let envExample = AlertingStack.repo + "/deploy/mdevmon-instance.env.example"
    static let remoteConfig = AlertingStack.repo + "/deploy/mdevmon-remote.yaml"
    static let instanceFiles = "/etc/mdevmon-remote/"

    static func text() throws -> String { try String(contentsOfFile: template, encoding: .utf8) }

    /// The template as `dir/mdevmon@.service`, with ExecStart pointed at the binary under test (verify
    /// checks that it exists) and the instance files in `dir`, where `dir/test.env` exists.
    static func installedCopy(in dir: TemporaryDirectory) throws -> String {
        let text = try text()
        try #require(text.contains("ExecStart=/usr/local/bin/mdevmon "), "the template's ExecStart changed shape")
        try #require(text.contains(instanceFiles), "the template no longer reads \(instanceFiles)")
        _ = try dir.file("test.env", try String(contentsOfFile: envExample, encoding: .utf8))
        let path = dir.path + "/mdevmon@.service"
        try text.replacingOccurrences(of: "ExecStart=/usr/local/bin/mdevmon ", with: "ExecStart=\(mdevmonBinary) ")
            .replacingOccurrences(of: instanceFiles, with: dir.path + "/")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `Key=value` lines of one section, in order.
    static func directives(_ text: String, section: String) -> [String] {
        var inside = false
        var lines: [String] = []
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("[") { inside = line == "[\(section)]"; continue }
            if inside && !line.hasPrefix("#") && line.contains("=") { lines.append(line) }
        }
        return lines
    }

    @Test func systemdAnalyzeVerifyAcceptsAnInstance() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let unit = try Self.installedCopy(in: dir)
        let r = LibvirtHost.run("/usr/bin/systemd-analyze", ["verify", dir.path + "/mdevmon@test.service"])
        #expect(r.status == 0, "systemd-analyze verify: \(r.out)\(r.err)")
        #expect(r.err.isEmpty && r.out.isEmpty, "systemd-analyze verify: \(r.out)\(r.err)")

        // The instance is read from the template: a template whose command does not exist fails it.
        try String(contentsOfFile: unit, encoding: .utf8)
            .replacingOccurrences(of: "ExecStart=\(mdevmonBinary) ", with: "ExecStart=\(dir.path)/missing ")
            .write(toFile: unit, atomically: true, encoding: .utf8)
        let broken = LibvirtHost.run("/usr/bin/systemd-analyze", ["verify", dir.path + "/mdevmon@test.service"])
        #expect(broken.status != 0 && broken.err.contains("missing"), "\(broken.out)\(broken.err)")
    }

    @Test func eachInstanceHasItsEnvironmentFileStateAndNoRoot() throws {
        let text = try Self.text()
        let service = Self.directives(text, section: "Service")
        for line in ["Type=notify", "WatchdogSec=30", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                     // Without "-": a missing file fails the instance.
                     "EnvironmentFile=/etc/mdevmon-remote/%i.env",
                     "StateDirectory=mdevmon-remote/%i", "StateDirectoryMode=0700",
                     "User=mdevmon", "Group=mdevmon", "CapabilityBoundingSet=", "NoNewPrivileges=yes"] {
            #expect(service.contains(line), "missing \(line)")
        }
        #expect(Self.directives(text, section: "Unit").contains("AssertPathExists=/etc/mdevmon-remote/%i.env"))
        #expect(!service.contains { $0.hasPrefix("DynamicUser=") || $0 == "User=root" })
        let families = service.first { $0.hasPrefix("RestrictAddressFamilies=") } ?? ""
        #expect(families.contains("AF_INET ") && families.hasSuffix("AF_INET6"), "\(families)")
        let exec = try #require(service.first { $0.hasPrefix("ExecStart=") })
        #expect(exec.contains(" --state.dir /var/lib/mdevmon-remote/%i "), "the state directory systemd creates: \(exec)")
        #expect(exec.contains(" --connect $MDEVMON_URI ") && exec.contains(" --web.listen-address $MDEVMON_LISTEN "), "\(exec)")

        // Everything else of mdevmon.service's [Service] (timeouts, watchdog, the whole sandbox) is kept
        // as it is; what differs is where things are and who runs them.
        let local = Self.directives(try String(contentsOfFile: UnitFileTests.unit, encoding: .utf8), section: "Service")
        let differing: Set<String> = ["ExecStart", "User", "StateDirectory", "ConfigurationDirectory", "ConfigurationDirectoryMode"]
        for line in local where !differing.contains(String(line.prefix { $0 != "=" })) {
            #expect(service.contains(line), "mdevmon.service has \(line), the template does not")
        }
    }

    @Test func systemdRatesTheInstanceSandboxAsNonRootAndTight() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try Self.installedCopy(in: dir)
        let r = LibvirtHost.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", dir.path + "/mdevmon@test.service"])
        let lines = (r.out + r.err).split(separator: "\n")
        let user = lines.first { $0.contains("User=/DynamicUser=") }
        #expect(user?.hasPrefix("✓") == true, "systemd-analyze security: \(user ?? "no User= line")")
        let overall = lines.first { $0.contains("Overall exposure level") }
        let score = overall.flatMap { line in line.split(separator: " ").compactMap { Double($0) }.first }
        #expect(score != nil && score! <= 1.5, "systemd-analyze security: \(overall ?? "no score")")
    }

    // MARK: the command line systemd runs

    /// `KEY=value` assignments of an environment file (systemd's syntax as the shipped files use it:
    /// no quotes, `#` comments).
    static func environment(file text: String) -> [String: String] {
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            env[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return env
    }

    /// The template's `Environment=` defaults (their `%i` resolved), then the environment file over them
    /// (taken as written), as systemd orders them.
    static func environment(instance: String, overriddenBy file: [String: String]) throws -> [String: String] {
        var env: [String: String] = [:]
        for line in directives(try text(), section: "Service") where line.hasPrefix("Environment=") {
            let assignment = line.dropFirst("Environment=".count).replacingOccurrences(of: "%i", with: instance)
            env.merge(environment(file: assignment)) { $1 }
        }
        return env.merging(file) { $1 }
    }

    /// ExecStart= as systemd expands this line: `%i` is the instance; a word that is exactly `$NAME`
    /// becomes the value split at whitespace (no word at all when unset or empty); `${NAME}` within a
    /// word becomes the value.
    static func command(instance: String, env: [String: String]) throws -> [String] {
        let exec = try #require(directives(try text(), section: "Service").first { $0.hasPrefix("ExecStart=") })
        try #require(!exec.contains("\"") && !exec.contains("'"), "quoting in ExecStart: extend this expansion")
        var words: [String] = []
        for word in exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init) {
            let word = word.replacingOccurrences(of: "%i", with: instance)
            if word.hasPrefix("$") && !word.hasPrefix("${") {
                words += (env[String(word.dropFirst())] ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
                continue
            }
            var out = word
            while let open = out.range(of: "${"), let close = out.range(of: "}", range: open.upperBound..<out.endIndex) {
                out.replaceSubrange(open.lowerBound..<close.upperBound, with: env[String(out[open.upperBound..<close.lowerBound])] ?? "")
            }
            words.append(out)
        }
        return words
    }

    /// Instance `test`'s command for the environment file `file`, with the binary under test and `state`
    /// for the directory systemd creates.
    static func testCommand(file: [String: String], state: String) throws -> [String] {
        let words = try command(instance: "test", env: try environment(instance: "test", overriddenBy: file))
        try #require(words.first == "/usr/local/bin/mdevmon" && words.contains("/var/lib/mdevmon-remote/test"), "\(words)")
        return [mdevmonBinary] + words.dropFirst().map { $0 == "/var/lib/mdevmon-remote/test" ? state : $0 }
    }

    /// The example environment file with the shipped remote configuration, its URI aimed at this
    /// machine's libvirtd through libvirt's remote driver over the unix socket (to mdevmon a local URI; the
    /// remote protocol itself is the e2e's, `qemu+tcp`): mdevmon syncs and says it opened libvirt read-only.
    @Test(.enabled(if: LibvirtHost.enabled)) func exampleEnvironmentStartsAReadOnlyWatcher() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let example = Self.environment(file: try String(contentsOfFile: Self.envExample, encoding: .utf8))
        #expect(example["MDEVMON_URI"]?.hasPrefix("qemu+tls://") == true && example["MDEVMON_LISTEN"] != nil, "\(example)")
        let port = try Loopback.freePort()
        var file = example
        file["MDEVMON_URI"] = "qemu+unix:///system"
        file["MDEVMON_LISTEN"] = "127.0.0.1:\(port)"
        file["MDEVMON_CONFIG"] = Self.remoteConfig
        file["MDEVMON_ARGS"] = "--log.target=stderr"
        let args = try Self.testCommand(file: file, state: dir.path + "/state")
        try FileManager.default.createDirectory(atPath: dir.path + "/state", withIntermediateDirectories: false)

        let log = dir.path + "/mdevmon.log"
        let daemon = try AlertingProcess.spawn(args[0], Array(args.dropFirst()), log: log)
        defer { AlertingProcess.stop([daemon]) }
        let base = "http://127.0.0.1:\(port)"
        let synced = await AlertingNet.poll(timeout: .seconds(30), every: .milliseconds(100)) { AlertingNet.get(base + "/healthz").ok }
        let stderr = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try #require(synced, "no /healthz 200 from \(args.joined(separator: " ")):\n\(stderr())")
        // The host checks run after the first evaluation; the libvirt check names the access mode.
        let readOnly = await AlertingNet.poll(timeout: .seconds(30), every: .milliseconds(200)) {
            AlertingNet.get(base + "/").body.contains("at qemu+unix:///system, read-only")
        }
        #expect(readOnly, "the landing page never said read-only:\n\(AlertingNet.get(base + "/").body)")
    }

    /// An environment file without MDEVMON_URI (or MDEVMON_LISTEN): the flag is left without a value and
    /// mdevmon exits naming it, instead of connecting to libvirt's default URI.
    @Test func missingURIOrListenAddressFailsNamingTheFlag() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let example = Self.environment(file: try String(contentsOfFile: Self.envExample, encoding: .utf8))
        for (unset, flag) in [("MDEVMON_URI", "--connect"), ("MDEVMON_LISTEN", "--web.listen-address")] {
            var file = example
            file[unset] = nil
            let args = try Self.testCommand(file: file, state: dir.path)
            // Bounded: were the flags accepted, mdevmon would run (and retry the example's host) for good.
            let r = LibvirtHost.run("/usr/bin/timeout", ["20"] + args)
            #expect(r.status == 64, "\(unset) unset: exit \(r.status): \(r.err)")
            #expect(r.err.contains("Missing value for") && r.err.contains(flag), "\(unset) unset: \(r.err)")
        }
    }
}
