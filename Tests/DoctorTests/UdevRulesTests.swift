import Doctor
import Foundation
import Monitor
import Testing

/// Parsing udev rule files and finding the programs they run, against fake roots.
@Suite struct UdevRulesTests {
    /// A root with the tools Debian 12's mdevctl rule needs, except where a test removes one.
    static func debianHost(sbinMdevctl: Bool) throws -> FakeHost {
        let host = try FakeHost()
        try host.executable("/bin/sh")
        try host.executable("/usr/bin/logger")
        try host.executable("/usr/bin/mdevctl")
        if sbinMdevctl { try host.symlink("/usr/sbin/mdevctl", to: host.root + "/usr/bin/mdevctl") }
        try host.write("/usr/lib/udev/rules.d/60-mdevctl.rules", debianMdevctlRules)
        return host
    }

    @Test func stockDebianRuleFailsNamingTheMissingProgramAndTheSymlinkFix() throws {
        let host = try Self.debianHost(sbinMdevctl: false)
        defer { host.remove() }
        let check = HostChecks.udevRules(paths: HostPaths(root: host.root))
        #expect(check.id == "udev_rules")
        #expect(check.status == .fail)
        #expect(check.details == [
            "/usr/lib/udev/rules.d/60-mdevctl.rules:3 runs /usr/sbin/mdevctl, which does not exist",
            "/usr/lib/udev/rules.d/60-mdevctl.rules:8 runs /usr/sbin/mdevctl, which does not exist",
        ])
        #expect(check.fix == "ln -s /usr/bin/mdevctl /usr/sbin/mdevctl; then udevadm control --reload")
    }

    @Test func symlinkMakesItPass() throws {
        let host = try Self.debianHost(sbinMdevctl: true)
        defer { host.remove() }
        let check = HostChecks.udevRules(paths: HostPaths(root: host.root))
        #expect(check.status == .pass, "\(check)")
        #expect(check.summary.contains("60-mdevctl.rules"))
    }

    @Test func programsOfTheDebianRuleAreTheShellItsTwoCommandsAndLogger() throws {
        let host = try Self.debianHost(sbinMdevctl: false)
        defer { host.remove() }
        let programs = UdevRules.programs(in: debianMdevctlRules, file: "60-mdevctl.rules", paths: HostPaths(root: host.root))
        #expect(programs.filter { $0.line == 3 }.map(\.command) == ["/bin/sh", "/usr/sbin/mdevctl", "logger", "logger"])
        #expect(programs.first { $0.command == "logger" }?.resolved == "/usr/bin/logger")
        #expect(programs.filter { !$0.exists }.map(\.command) == ["/usr/sbin/mdevctl", "/usr/sbin/mdevctl"])
    }

    @Test func etcOverridesTheSameNamedFile() throws {
        let host = try Self.debianHost(sbinMdevctl: false)
        defer { host.remove() }
        try host.write("/etc/udev/rules.d/60-mdevctl.rules",
                       #"ACTION=="add", TEST=="/etc/mdevctl.d/$kernel", RUN+="/usr/bin/mdevctl start-parent-mdevs %k""# + "\n")
        let files = UdevRules.effectiveFiles(paths: HostPaths(root: host.root))
        #expect(files.map(\.path) == ["/etc/udev/rules.d/60-mdevctl.rules"])
        #expect(HostChecks.udevRules(paths: HostPaths(root: host.root)).status == .pass)
    }

    @Test func maskedRuleFileIsIgnored() throws {
        let host = try Self.debianHost(sbinMdevctl: false)
        defer { host.remove() }
        try host.symlink("/etc/udev/rules.d/60-mdevctl.rules", to: "/dev/null")
        #expect(UdevRules.effectiveFiles(paths: HostPaths(root: host.root)).isEmpty)
        let check = HostChecks.udevRules(paths: HostPaths(root: host.root))
        #expect(check.status == .warn)
        #expect(check.summary.contains("no udev rule concerns mdevs"))
    }

    @Test func rulesNotAboutMdevsAreNotJudged() throws {
        let host = try Self.debianHost(sbinMdevctl: true)
        defer { host.remove() }
        try host.write("/usr/lib/udev/rules.d/70-other.rules", #"ACTION=="add", RUN+="/usr/sbin/not-here""# + "\n")
        #expect(HostChecks.udevRules(paths: HostPaths(root: host.root)).status == .pass)
    }

    @Test func programKeysBareNamesContinuationsAndBuiltins() throws {
        let host = try FakeHost()
        defer { host.remove() }
        try host.executable("/usr/lib/udev/mdev-helper")
        let rules = """
            # mdev rules
            SUBSYSTEM=="mdev", PROGRAM=="/usr/bin/vendor-id %k", \\
              IMPORT{program}="mdev-helper $devpath", RUN{builtin}+="kmod load vfio_mdev"
            SUBSYSTEM=="mdev", RUN+="missing-tool --flag", RUN+="$env{HELPER}"

            """
        let programs = UdevRules.programs(in: rules, file: "x.rules", paths: HostPaths(root: host.root))
        #expect(programs.map(\.command) == ["/usr/bin/vendor-id", "mdev-helper", "missing-tool"])
        #expect(programs.map(\.line) == [2, 2, 4])
        #expect(programs.map(\.exists) == [false, true, false])
        #expect(programs[1].resolved == "/usr/lib/udev/mdev-helper")
        #expect(programs[2].resolved == nil)
    }

    @Test func shellScriptCommandsSkipRedirectionsAssignmentsAndBuiltins() {
        let script = #"FOO=1 /usr/bin/a x > /dev/null 2>&1 && echo done; if test -e /x; then exec /usr/bin/b "q|r"; fi | $(/usr/bin/c)"#
        #expect(UdevRules.shellCommands(script) == ["/usr/bin/a", "/usr/bin/b", "/usr/bin/c"])
    }
}
