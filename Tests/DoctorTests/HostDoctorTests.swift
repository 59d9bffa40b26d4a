import Doctor
import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// The checks that need the configuration and the index, and a whole run against a fake root.
@Suite struct HostDoctorTests {
    let a = "aaaaaaaa-0000-4000-8000-00000000000a"
    let b = "bbbbbbbb-0000-4000-8000-00000000000b"
    let c = "cccccccc-0000-4000-8000-00000000000c"

    @Test func autostartAndRestoreOwnedMdevsWithoutParentFail() {
        var state = IndexState.with(
            [Sample.device(a, parent: IndexState.placeholderParent, autostart: true),
             Sample.device(b, parent: Sample.otherParent),
             Sample.device(c, active: true, persistent: false)],
            parents: [Sample.parent])
        let check = HostDoctor.unparentedMdevs(state, config: PolicyConfig())
        #expect(check.status == .fail)
        #expect(check.details == [
            "\(a) type nvidia-63 under computer: the parent device is not there, autostart",
            "\(b): waiting for parent \(Sample.otherParent) to offer type nvidia-63",
        ])
        // A parent libvirt lists with other types only (its driver has not registered this one) is the same.
        _ = state.upsertParent(Sample.parentDevice(Sample.otherParent, type: "nvidia-other"))
        #expect(HostDoctor.unparentedMdevs(state, config: PolicyConfig()).details.last
                == "\(b): waiting for parent \(Sample.otherParent) to offer type nvidia-63")
        // A restore bringing it back (the daemon's policy) waits for the driver: no alarm, the wait is said.
        let waiting = HostDoctor.unparentedMdevs(state, config: PolicyConfig(), restoring: { $0 == b })
        #expect(waiting.status == .fail && waiting.details.count == 1, "the autostart device without a restore still fails")
        let onlyWaits = HostDoctor.unparentedMdevs(state, config: PolicyConfig(), restoring: { [a, b].contains($0) })
        #expect(onlyWaits.status == .pass)
        #expect(onlyWaits.summary == "2 mdev(s) wait for their parent or its type, and mdevmon's restore is bringing them back")
        #expect(onlyWaits.details.last == "\(b): waiting for parent \(Sample.otherParent) to offer type nvidia-63")
        _ = state.upsertParent(Sample.parentDevice(Sample.otherParent))
        #expect(HostDoctor.unparentedMdevs(state, config: PolicyConfig()).details.count == 1)

        // Outside the restore policy's ownership only the autostart device counts.
        var config = PolicyConfig()
        config.ownership.excludeUUIDs = [b]
        #expect(HostDoctor.unparentedMdevs(state, config: config).details.count == 1)
        config.restore.enabled = false
        config.ownership.excludeUUIDs = []
        #expect(HostDoctor.unparentedMdevs(state, config: config).details.count == 1)
    }

    @Test func mdevsWithTheirParentPass() {
        let state = IndexState.with([Sample.device(a, autostart: true)])
        #expect(HostDoctor.unparentedMdevs(state, config: PolicyConfig()).status == .pass)
        #expect(HostDoctor.unparentedMdevs(nil, config: PolicyConfig()).status == .warn)
    }

    @Test func domainsBlockedAreTheIndexReferenceProblems() {
        let state = IndexState.with(
            [Sample.device(a, active: true), Sample.device(b)],
            domains: [Sample.domain("vm-1", uuids: [a, b]), Sample.domain("vm-2", uuids: [c], autostart: true)])
        let check = HostDoctor.domainsBlocked(state)
        #expect(check.status == .fail)
        #expect(check.summary == "2 defined domain(s) could not start now")
        #expect(check.details == ["vm-1: mdev \(b) is inactive", "vm-2: mdev \(c) is missing (domain autostarts)"])
        #expect(HostDoctor.domainsBlocked(IndexState.with([Sample.device(a, active: true)],
                                                          domains: [Sample.domain("vm", uuids: [a])])).status == .pass)
    }

    /// The daemon judges from the policy's verdicts: a domain that only waits for a restore under way (a
    /// healthy reboot) passes, naming it; any other blocker still fails.
    @Test func aDomainWaitingForARestoreIsNotBlocked() {
        let state = IndexState.with([Sample.device(b)], domains: [Sample.domain("vm-1", uuids: [b], autostart: true)])
        let restoring = ReferenceProblem(domain: "vm-1", uuid: b, reason: .restoring, domainAutostart: true)
        let waiting = HostDoctor.domainsBlocked(state, problems: [restoring])
        #expect(waiting.status == .pass)
        #expect(waiting.summary == "every defined domain could start now or waits for a restore under way")
        #expect(waiting.details == ["vm-1: mdev \(b) is restoring (domain autostarts)"])
        let missing = ReferenceProblem(domain: "vm-2", uuid: c, reason: .missing, domainAutostart: false)
        #expect(HostDoctor.domainsBlocked(state, problems: [restoring, missing]).status == .fail)
        // Without the policy's verdicts, the index's own: the inactive mdev blocks.
        #expect(HostDoctor.domainsBlocked(state).status == .fail)
    }

    @Test func configValidOrNamingLineAndField() throws {
        let dir = NSTemporaryDirectory() + "mdevmon-doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(HostDoctor.config(.load(file: dir + "/absent.yaml", isDefaultPath: true)).status == .pass)
        #expect(HostDoctor.config(.load(file: dir + "/absent.yaml", isDefaultPath: false)).status == .fail)
        try "dry_run: maybe\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let loaded = HostDoctor.LoadedConfig.load(file: dir + "/bad.yaml", isDefaultPath: false)
        let check = HostDoctor.config(loaded)
        #expect(check.status == .fail && loaded.loadError != nil && loaded.config == PolicyConfig())
        #expect(check.summary == "config \(dir)/bad.yaml:1: dry_run: must be true or false")
    }

    @Test func wholeRunOnAFakeDebianHostInOrder() throws {
        let root = NSTemporaryDirectory() + "mdevmon-doctor-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        for dir in ["/usr/lib/udev/rules.d", "/usr/bin", "/bin", "/state"] {
            try fm.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        for tool in ["/usr/bin/mdevctl", "/usr/bin/logger", "/bin/sh"] {
            _ = fm.createFile(atPath: root + tool, contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        }
        try #"ACTION=="add", TEST=="/etc/mdevctl.d/$kernel", RUN+="/bin/sh -c '/usr/sbin/mdevctl start-parent-mdevs %k | logger'""#
            .write(toFile: root + "/usr/lib/udev/rules.d/60-mdevctl.rules", atomically: true, encoding: .utf8)
        let inputs = HostDoctor.Inputs(paths: HostPaths(root: root), stateDir: root + "/state")
        let checks = HostDoctor.evaluate(
            inputs: inputs, config: .load(file: root + "/none.yaml", isDefaultPath: true), probe: LibvirtProbe(uri: "qemu:///system", readOnly: false, version: LibvirtVersion(major: 9, minor: 0, micro: 0)),
            state: IndexState.with([Sample.device(a, active: true)]))
        #expect(checks.map(\.id) == HostCheckID.all)
        #expect(Dictionary(uniqueKeysWithValues: checks.map { ($0.id, $0.status) }) == [
            "libvirt": .pass, "mdevctl": .pass, "udev_rules": .fail, "kernel_modules": .fail, "mdev_parents": .pass,
            "unparented_mdevs": .pass, "domains_blocked": .pass, "service_unit": .warn, "state_dir": .pass, "config": .pass,
        ])
        #expect(HostDoctor.overall(checks) == .fail)
    }

    /// Over a remote URI this machine's mdevctl, udev rules, modules and sysfs say nothing about the libvirt
    /// host: those checks are left out, the ones about libvirt's answers and mdevmon itself stay.
    @Test func aRemoteURILeavesOutTheChecksOfThisMachinesFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let inputs = HostDoctor.Inputs(paths: HostPaths(root: dir.path), stateDir: dir.path)
        let probe = LibvirtProbe(uri: "qemu+tls://kvmz01.example.com/system", readOnly: true,
                                 version: LibvirtVersion(major: 11, minor: 3, micro: 0))
        let checks = HostDoctor.evaluate(inputs: inputs, config: .load(file: dir.path + "/none.yaml", isDefaultPath: true),
                                         probe: probe, state: IndexState.with([Sample.device(a, active: true)]))
        #expect(checks.map(\.id) == ["libvirt", "unparented_mdevs", "domains_blocked", "state_dir", "config"])
        #expect(checks.first?.status == .pass)
    }
}
