import Foundation

/// A temporary directory standing in for the host's `/`: rule files, executables, `/proc/modules`,
/// units. Removed by `remove()`.
struct FakeHost {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "mdevmon-host-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String, executable: Bool = false) throws {
        let full = root + path
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: full) }
    }

    func executable(_ path: String) throws { try write(path, "#!/bin/sh\n", executable: true) }

    func symlink(_ path: String, to target: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
    }

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

/// Stock Debian 12's `/usr/lib/udev/rules.d/60-mdevctl.rules` (mdevctl 1.2.0-1), verbatim.
let debianMdevctlRules = #"""
# When registered with mdev, try to start any persistent devices. Note that
# this uevent is not triggered on older kernels.
ACTION=="change", ENV{MDEV_STATE}=="registered", TEST=="/etc/mdevctl.d/$kernel", RUN+="/bin/sh -c '{ /usr/sbin/mdevctl start-parent-mdevs %k 2>&3 | logger -t mdevctl; } 3>&1 1>&2 | logger -t mdevctl -p 2'"

# For compatibility with kernels where mdev doesn't trigger the change uevent
# on parent device registration, try to start mdevs when the device is added;
# if the device is setup early this may still work.
ACTION=="add", TEST=="/etc/mdevctl.d/$kernel", RUN+="/bin/sh -c '{ /usr/sbin/mdevctl start-parent-mdevs %k 2>&3 | logger -t mdevctl; } 3>&1 1>&2 | logger -t mdevctl -p 2'"
"""#
