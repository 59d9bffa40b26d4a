import Foundation
import Glibc
import Monitor

/// The host checks that need only files and libvirt's answers: each a pure function of what it is
/// given, so unit tests hand it a temporary root. `HostDoctor` adds the checks that need the configuration.
public enum HostChecks {
    /// libvirt reachable, its version, the access mdevmon needs, the node-device driver.
    public static func libvirt(_ probe: LibvirtProbe) -> HostCheck {
        let access = probe.readOnly ? "read-only" : "read-write"
        if let error = probe.connectError {
            return HostCheck(
                id: HostCheckID.libvirt, status: .fail,
                summary: "libvirt at \(probe.uri) is unreachable (\(access)): \(error)",
                fix: "systemctl start libvirtd (or virtqemud.socket and virtnodedevd.socket), then check the socket's permissions")
        }
        let version = probe.version.map { "libvirt \($0)" } ?? "libvirt (version unknown)"
        if let error = probe.nodeDeviceError {
            return HostCheck(
                id: HostCheckID.libvirt, status: .fail,
                summary: "\(version) at \(probe.uri), \(access), but its node-device driver does not answer: \(error)",
                fix: "start the node-device driver: systemctl enable --now virtnodedevd.socket (modular daemons), or use a libvirtd built with it")
        }
        return HostCheck(
            id: HostCheckID.libvirt, status: .pass,
            summary: "\(version) at \(probe.uri), \(access), node-device driver present")
    }

    /// mdevctl, which libvirt uses to define, start and autostart mdevs.
    public static func mdevctl(paths: HostPaths) -> HostCheck {
        // On a merged-/usr host /bin/mdevctl is /usr/bin/mdevctl: one installation, listed once.
        var seen: Set<String> = []
        let found = HostPaths.programPath.map { "\($0)/mdevctl" }
            .filter { FileManager.default.isExecutableFile(atPath: paths.resolve($0)) }
            .filter { seen.insert(URL(fileURLWithPath: paths.resolve($0)).resolvingSymlinksInPath().path).inserted }
        guard !found.isEmpty else {
            return HostCheck(
                id: HostCheckID.mdevctl, status: .fail,
                summary: "mdevctl is not installed: libvirt cannot define, start or autostart mdevs",
                fix: "apt-get install mdevctl")
        }
        return HostCheck(id: HostCheckID.mdevctl, status: .pass, summary: "mdevctl installed at \(found.joined(separator: ", "))")
    }

    /// Whether the udev rules that start autostart mdevs when their parent appears can run: every
    /// program in every rule file that concerns mdevs must exist.
    public static func udevRules(paths: HostPaths) -> HostCheck {
        var broken: [UdevRules.Program] = []
        var files: [String] = []
        for (_, path) in UdevRules.effectiveFiles(paths: paths) {
            guard case .success(let bytes) = WholeFile.read(paths.resolve(path)) else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            guard UdevRules.concernsMdevs(text) else { continue }
            files.append(path)
            broken += UdevRules.programs(in: text, file: path, paths: paths).filter { !$0.exists }
        }
        if files.isEmpty {
            return HostCheck(
                id: HostCheckID.udevRules, status: .warn,
                summary: "no udev rule concerns mdevs: mdevctl's autostart mdevs will not start when their parent appears",
                fix: "apt-get install mdevctl (it ships 60-mdevctl.rules)")
        }
        guard !broken.isEmpty else {
            return HostCheck(id: HostCheckID.udevRules, status: .pass,
                             summary: "every program run by \(files.joined(separator: ", ")) exists")
        }
        var details: [String] = []
        var fixes: [String] = []
        // One line per missing program per file; the same program on several lines of a file is one fix.
        var seen: Set<String> = []
        for program in broken {
            details.append("\(program.file):\(program.line) runs \(program.command), which does not exist")
            guard seen.insert(program.command).inserted else { continue }
            if let path = program.resolved, let other = UdevRules.sameNamedExecutable(path, paths: paths) {
                fixes.append("ln -s \(other) \(path)")
            } else {
                let name = program.file.split(separator: "/").last.map(String.init) ?? program.file
                fixes.append("install \(program.command), or copy \(program.file) to /etc/udev/rules.d/\(name) and correct the path")
            }
        }
        let commands = Set(broken.map(\.command)).sorted().joined(separator: ", ")
        return HostCheck(
            id: HostCheckID.udevRules, status: .fail,
            summary: "udev cannot run \(commands): autostart mdevs stay down after every boot",
            details: details, fix: fixes.joined(separator: "; ") + "; then udevadm control --reload")
    }

    /// The kernel modules every mdev needs. A module is loaded when `/proc/modules` lists it or
    /// `/sys/module/<name>` exists (built in).
    /// - Parameter definedMdevs: how many mdevs libvirt knows; without any, missing modules only warn.
    public static func kernelModules(paths: HostPaths, definedMdevs: Int) -> HostCheck {
        var loaded: Set<String> = []
        if case .success(let bytes) = WholeFile.read(paths.resolve("/proc/modules")) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                if let name = line.split(separator: " ").first { loaded.insert(String(name)) }
            }
        }
        let wanted = ["vfio", "mdev"]
        let missing = wanted.filter { !loaded.contains($0) && !directoryExists(paths.resolve("/sys/module/\($0)")) }
        guard !missing.isEmpty else {
            return HostCheck(id: HostCheckID.kernelModules, status: .pass, summary: "kernel modules vfio and mdev are loaded")
        }
        return HostCheck(
            id: HostCheckID.kernelModules, status: definedMdevs > 0 ? .fail : .warn,
            summary: "kernel module\(missing.count > 1 ? "s" : "") \(missing.joined(separator: " and ")) not loaded: "
                + (definedMdevs > 0 ? "the \(definedMdevs) defined mdev(s) cannot start" : "no mdev can be created"),
            fix: "modprobe \(missing.joined(separator: " ")) (loading the parent's vendor driver also loads them)")
    }

    /// Devices that can host mdevs: what the kernel registered (`/sys/class/mdev_bus`) and what
    /// libvirt lists as parents (nil when libvirt was not reached).
    public static func mdevParents(paths: HostPaths, libvirtParents: [String]?) -> HostCheck {
        let sysfs = ((try? FileManager.default.contentsOfDirectory(atPath: paths.resolve("/sys/class/mdev_bus"))) ?? []).sorted()
        let known = libvirtParents.map { "libvirt lists \($0.count)" } ?? "libvirt not reached"
        if sysfs.isEmpty && (libvirtParents ?? []).isEmpty {
            return HostCheck(
                id: HostCheckID.mdevParents, status: .warn,
                summary: "no device offers mdev types (/sys/class/mdev_bus is empty, \(known))",
                fix: "load the vendor driver of the mediated device's parent (e.g. the vGPU host driver, vfio_ap, mtty)")
        }
        return HostCheck(
            id: HostCheckID.mdevParents, status: .pass,
            summary: "\(sysfs.count) mdev parent(s) in /sys/class/mdev_bus, \(known)",
            details: sysfs + (libvirtParents ?? []).sorted().map { "libvirt: \($0)" })
    }

    /// mdevmon's own systemd unit: installed, not masked, enabled.
    public static func serviceUnit(paths: HostPaths, unit: String = "mdevmon.service") -> HostCheck {
        let fm = FileManager.default
        var installed: String?
        for dir in HostPaths.unitDirectories {
            let path = "\(dir)/\(unit)"
            let full = paths.resolve(path)
            if (try? fm.destinationOfSymbolicLink(atPath: full)) == "/dev/null" {
                return HostCheck(id: HostCheckID.serviceUnit, status: .fail, summary: "\(unit) is masked (\(path) → /dev/null)",
                                 fix: "systemctl unmask \(unit) && systemctl enable --now \(unit)")
            }
            if fm.fileExists(atPath: full) { installed = path; break }
        }
        guard let installed else {
            return HostCheck(id: HostCheckID.serviceUnit, status: .warn,
                             summary: "\(unit) is not installed: mdevmon does not start at boot",
                             fix: "apt-get install ./mdevmon_*.deb (or deploy/install.sh)")
        }
        var wants: [String] = []
        for dir in ["/etc/systemd/system", "/usr/lib/systemd/system"] {
            for entry in (try? fm.contentsOfDirectory(atPath: paths.resolve(dir))) ?? [] where entry.hasSuffix(".wants") {
                // lstat: the link's target is absolute on the host (and outside a test root).
                if (try? fm.attributesOfItem(atPath: paths.resolve("\(dir)/\(entry)/\(unit)"))) != nil { wants.append("\(dir)/\(entry)") }
            }
        }
        guard !wants.isEmpty else {
            return HostCheck(id: HostCheckID.serviceUnit, status: .warn,
                             summary: "\(installed) is installed but not enabled: mdevmon does not start at boot",
                             fix: "systemctl enable --now \(unit)")
        }
        return HostCheck(id: HostCheckID.serviceUnit, status: .pass,
                         summary: "\(installed) is installed and enabled (\(wants.joined(separator: ", ")))")
    }

    /// The state directory (not under a test root: mdevmon's own `--state.dir`) exists and is writable.
    public static func stateDirectory(_ path: String) -> HostCheck {
        guard directoryExists(path) else {
            return HostCheck(id: HostCheckID.stateDir, status: .warn,
                             summary: "state directory \(path) does not exist (systemd's StateDirectory= creates it when the service starts)",
                             fix: "install -d -m 0700 \(path)")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            return HostCheck(id: HostCheckID.stateDir, status: .fail,
                             summary: "state directory \(path) is not writable (\(reason)): restore state cannot be saved",
                             fix: "chown root: \(path) && chmod 0700 \(path), and check the mount is read-write")
        }
        return HostCheck(id: HostCheckID.stateDir, status: .pass, summary: "state directory \(path) is writable")
    }

    static func directoryExists(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
