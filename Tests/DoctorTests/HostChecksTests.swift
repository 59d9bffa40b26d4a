import Doctor
import Foundation
import Monitor
import Testing

/// The file-based host checks against fake roots, and the report formats.
@Suite struct HostChecksTests {
    @Test func kernelModulesFromProcModulesOrSysModule() throws {
        let host = try FakeHost()
        defer { host.remove() }
        let paths = HostPaths(root: host.root)
        var check = HostChecks.kernelModules(paths: paths, definedMdevs: 0)
        #expect(check.status == .warn && check.summary.hasPrefix("kernel modules vfio and mdev not loaded"), "\(check)")
        #expect(HostChecks.kernelModules(paths: paths, definedMdevs: 2).status == .fail)

        try host.write("/proc/modules", "vfio 45056 2 vfio_iommu_type1, Live 0x0000000000000000\nkvm 1 0 - Live 0x0\n")
        check = HostChecks.kernelModules(paths: paths, definedMdevs: 2)
        #expect(check.status == .fail && check.summary.hasPrefix("kernel module mdev not loaded"), "\(check)")
        #expect(check.fix?.hasPrefix("modprobe mdev") == true)

        try host.mkdir("/sys/module/mdev")  // built in
        #expect(HostChecks.kernelModules(paths: paths, definedMdevs: 2).status == .pass)
    }

    @Test func mdevctlInstalledOrNot() throws {
        let host = try FakeHost()
        defer { host.remove() }
        let paths = HostPaths(root: host.root)
        #expect(HostChecks.mdevctl(paths: paths).status == .fail)
        try host.executable("/usr/bin/mdevctl")
        let check = HostChecks.mdevctl(paths: paths)
        #expect(check.status == .pass && check.summary == "mdevctl installed at /usr/bin/mdevctl")
        // Merged /usr: /bin is a link to usr/bin, the same file is not listed twice.
        try FileManager.default.createSymbolicLink(atPath: host.root + "/bin", withDestinationPath: "usr/bin")
        #expect(HostChecks.mdevctl(paths: paths).summary == "mdevctl installed at /usr/bin/mdevctl")
    }

    @Test func detailsAreCappedWithACount() {
        let check = HostCheck(id: "x", status: .fail, summary: "s", details: (1...25).map { "d\($0)" })
        #expect(check.details.count == 21)
        #expect(check.details.first == "d1" && check.details[19] == "d20" && check.details.last == "… and 5 more")
    }

    @Test func mdevParentsFromSysfsOrLibvirt() throws {
        let host = try FakeHost()
        defer { host.remove() }
        let paths = HostPaths(root: host.root)
        #expect(HostChecks.mdevParents(paths: paths, libvirtParents: []).status == .warn)
        #expect(HostChecks.mdevParents(paths: paths, libvirtParents: ["mtty_mtty"]).status == .pass)
        try host.mkdir("/sys/class/mdev_bus/mtty")
        let check = HostChecks.mdevParents(paths: paths, libvirtParents: nil)
        #expect(check.status == .pass && check.details == ["mtty"], "\(check)")
    }

    @Test func serviceUnitMissingDisabledEnabledMasked() throws {
        let host = try FakeHost()
        defer { host.remove() }
        let paths = HostPaths(root: host.root)
        #expect(HostChecks.serviceUnit(paths: paths).status == .warn)
        try host.write("/usr/lib/systemd/system/mdevmon.service", "[Service]\n")
        var check = HostChecks.serviceUnit(paths: paths)
        #expect(check.status == .warn && check.fix == "systemctl enable --now mdevmon.service", "\(check)")
        // As systemctl enable makes it: an absolute link (dangling under the fake root, which is fine).
        try host.symlink("/etc/systemd/system/multi-user.target.wants/mdevmon.service", to: "/usr/lib/systemd/system/mdevmon.service")
        check = HostChecks.serviceUnit(paths: paths)
        #expect(check.status == .pass, "\(check)")
        try host.symlink("/etc/systemd/system/mdevmon.service", to: "/dev/null")
        #expect(HostChecks.serviceUnit(paths: paths).status == .fail)
    }

    @Test func stateDirectoryMissingOrWritable() throws {
        let host = try FakeHost()
        defer { host.remove() }
        #expect(HostChecks.stateDirectory(host.root + "/state").status == .warn)
        try host.mkdir("/state")
        #expect(HostChecks.stateDirectory(host.root + "/state").status == .pass)
        try host.write("/file", "x")
        #expect(HostChecks.stateDirectory(host.root + "/file").status == .warn, "a file is not a directory")
    }

    @Test func libvirtProbeResults() {
        #expect(HostChecks.libvirt(LibvirtProbe(uri: "qemu:///system", readOnly: true, connectError: "Failed to connect socket")).status == .fail)
        #expect(HostChecks.libvirt(LibvirtProbe(uri: "u", readOnly: false, version: LibvirtVersion(major: 9, minor: 0, micro: 0), nodeDeviceError: "no driver")).status == .fail)
        let ok = HostChecks.libvirt(LibvirtProbe(uri: "qemu:///system", readOnly: false, version: LibvirtVersion(major: 9, minor: 0, micro: 0)))
        #expect(ok.status == .pass)
        #expect(ok.summary == "libvirt 9.0.0 at qemu:///system, read-write, node-device driver present")
    }

    @Test func reportTextAndJSON() throws {
        let checks = [
            HostCheck(id: "libvirt", status: .pass, summary: "fine"),
            HostCheck(id: "udev_rules", status: .fail, summary: "broken", details: ["a:3 runs /x"], fix: "ln -s /y /x"),
        ]
        #expect(HostCheckReport.text(checks) == """
            PASS  libvirt     fine
            FAIL  udev_rules  broken
                              - a:3 runs /x
                              fix: ln -s /y /x

            FAIL: 1 pass, 0 warn, 1 fail

            """)
        let object = try #require(try JSONSerialization.jsonObject(with: HostCheckReport.json(checks)) as? [String: Any])
        #expect(object["status"] as? String == "fail")
        #expect(object["exit_code"] as? Int == 2)
        let entries = try #require(object["checks"] as? [[String: Any]])
        #expect(entries.map { $0["check"] as? String } == ["libvirt", "udev_rules"])
        #expect(entries[1]["fix"] as? String == "ln -s /y /x")
        #expect(HostCheck.Status.warn.exitCode == 1 && HostCheck.Status.pass.exitCode == 0)
    }
}
