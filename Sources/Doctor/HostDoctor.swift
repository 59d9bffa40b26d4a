public import Foundation
public import Monitor
public import Policy

/// The checks that need mdevmon's configuration and the index, and the whole suite in one call —
/// shared by `mdevmon doctor` and the daemon's start-up and SIGHUP runs (`HostCheckService`).
public enum HostDoctor {
    /// What one run looks at. Files are read under `paths` (a temporary root in unit tests);
    /// `stateDir` is mdevmon's own flag, used as given.
    public struct Inputs: Sendable {
        public var paths: HostPaths
        public var stateDir: String

        public init(paths: HostPaths = HostPaths(), stateDir: String) {
            self.paths = paths
            self.stateDir = stateDir
        }
    }

    /// The configuration a run judges: its file, the configuration in effect and, when the file's last
    /// load failed, why. The checks never parse the file themselves.
    public struct LoadedConfig: Sendable {
        public var file: String
        public var config: PolicyConfig
        /// nil when the file's last load succeeded.
        public var loadError: String?

        public init(file: String, config: PolicyConfig, loadError: String? = nil) {
            self.file = file
            self.config = config
            self.loadError = loadError
        }

        /// `mdevmon doctor`'s: loads `file` once. A file that fails to load leaves the defaults in effect.
        public static func load(file: String, isDefaultPath: Bool? = nil) -> LoadedConfig {
            do {
                return LoadedConfig(file: file, config: try PolicyConfig.load(path: file, isDefaultPath: isDefaultPath))
            } catch {
                return LoadedConfig(file: file, config: PolicyConfig(), loadError: "\(error)")
            }
        }

        /// The daemon's: what `policy` runs with (loaded at start-up, replaced by each SIGHUP whose file
        /// loads) and, while the last SIGHUP's file failed to load, why (`ConfigReloadService` records it).
        public static func inEffect(_ policy: PolicyService, file: String) -> LoadedConfig {
            LoadedConfig(file: file, config: policy.currentConfig, loadError: policy.metrics.snapshot.lastReloadError)
        }
    }

    /// Every check, in `HostCheckID.all` order. Over a remote URI the checks of this machine's files
    /// (mdevctl, udev rules, kernel modules, sysfs parents, `mdevmon.service`) would judge the watcher, not
    /// the libvirt host: they are left out (`LocalOnlyFeature.hostFileChecks`).
    /// - Parameters:
    ///   - config: the configuration in effect, for the checks that depend on it and the config check.
    ///   - probe: libvirt's answer to a fresh connection.
    ///   - state: the index (one full sync, or the daemon's snapshot); nil when libvirt was not read.
    /// - Parameter problems: the reference policy's own verdicts (the daemon: they know which mdevs a restore
    ///   is bringing back); nil: the index's reference problems.
    public static func evaluate(inputs: Inputs, config loaded: LoadedConfig, probe: LibvirtProbe, state: IndexState?,
                                problems: [ReferenceProblem]? = nil) -> [HostCheck] {
        let config = loaded.config
        // Over a remote URI these would read the watcher's files, not the libvirt host's.
        let hostFiles = LocalOnlyFeature.hostFileChecks.available(uri: probe.uri)
        let checks: [HostCheck?] = [
            HostChecks.libvirt(probe),
            hostFiles ? HostChecks.mdevctl(paths: inputs.paths) : nil,
            hostFiles ? HostChecks.udevRules(paths: inputs.paths) : nil,
            hostFiles ? HostChecks.kernelModules(paths: inputs.paths, definedMdevs: state?.devices.count ?? 0) : nil,
            hostFiles ? HostChecks.mdevParents(paths: inputs.paths, libvirtParents: state.map { Array($0.parents.keys) }) : nil,
        ] + indexChecks(state, config: config, problems: problems).map { $0 } + [
            hostFiles ? HostChecks.serviceUnit(paths: inputs.paths) : nil,
            HostChecks.stateDirectory(inputs.stateDir),
            Self.config(loaded),
        ]
        return checks.compactMap { $0 }
    }

    /// `mdevmon doctor` after its arguments are parsed: loads `configFile` once, runs every check and
    /// formats the findings.
    /// - Parameter json: JSON (`HostCheckReport.json`) instead of the table.
    /// - Returns: What to print, and the exit code (0 all pass, 1 a warning, 2 a failure).
    public static func command(uri: String, configFile: String, stateDir: String, json: Bool) -> (output: Data, exitCode: Int32) {
        let config = LoadedConfig.load(file: configFile)
        let checks = run(uri: uri, inputs: Inputs(stateDir: stateDir), config: config)
        return (json ? HostCheckReport.json(checks) : Data(HostCheckReport.text(checks).utf8), overall(checks).exitCode)
    }

    /// Probes libvirt with the access the configuration needs, reads the index once through the same
    /// connection, and evaluates every check.
    public static func run(uri: String, inputs: Inputs, config: LoadedConfig) -> [HostCheck] {
        let (probe, state) = LibvirtProbe.run(uri: uri, readOnly: !config.config.needsWriteAccess) {
            try? FullSync.read(from: $0).state
        }
        return evaluate(inputs: inputs, config: config, probe: probe, state: state)
    }

    /// The configuration file loaded and validated (the last time it was loaded).
    public static func config(_ loaded: LoadedConfig) -> HostCheck {
        guard let error = loaded.loadError else {
            return HostCheck(id: HostCheckID.config, status: .pass, summary: "configuration \(loaded.file) is valid")
        }
        return HostCheck(id: HostCheckID.config, status: .fail, summary: error,
                         fix: "correct \(loaded.file) (see /usr/share/doc/mdevmon or deploy/mdevmon.yaml), then systemctl reload mdevmon")
    }

    /// The checks that judge only the index, which the daemon re-judges as the index changes.
    /// - Parameter restoring: whether a restore is bringing back the mdev of this UUID (the daemon's policy).
    public static func indexChecks(_ state: IndexState?, config: PolicyConfig, problems: [ReferenceProblem]? = nil,
                                   restoring: (String) -> Bool = { _ in false }) -> [HostCheck] {
        [unparentedMdevs(state, config: config, restoring: restoring), domainsBlocked(state, problems: problems)]
    }

    /// Persistent mdevs that should come up at boot (autostart, or the restore policy's to start)
    /// whose parent device is not there (libvirt holds them under its placeholder parent), or, inactive,
    /// whose parent does not offer their type (its vendor driver has not registered it). One a restore is
    /// bringing back (`restoring`: it waits for the parent and starts the mdev once it can) passes: a vGPU
    /// host's boot, its vendor driver still loading, is no alarm; a wait that never ends is
    /// `MdevRestorePending`'s.
    public static func unparentedMdevs(_ state: IndexState?, config: PolicyConfig, restoring: (String) -> Bool = { _ in false }) -> HostCheck {
        guard let state else {
            return HostCheck(id: HostCheckID.unparentedMdevs, status: .warn, summary: "not checked: libvirt was not read",
                             fix: "make libvirt reachable (see the libvirt check)")
        }
        func offersType(_ d: MdevDevice) -> Bool { state.parents[d.parent]?.types.contains { $0.id == d.mdevType } == true }
        let stranded = state.devices.values.filter { d in
            guard d.persistent else { return false }
            let wanted = d.autostart || (config.restore.enabled && config.owns(uuid: d.uuid, parent: d.parent, mdevType: d.mdevType))
            let parentMissing = d.parent == IndexState.placeholderParent || state.parents[d.parent] == nil
            return wanted && (parentMissing || (!d.active && !offersType(d)))
        }.sorted { $0.key < $1.key }
        func line(_ d: MdevDevice) -> String {
            let autostart = d.autostart ? ", autostart" : ""
            if d.parent != IndexState.placeholderParent {
                return "\(d.uuid): waiting for parent \(d.parent) to offer type \(d.mdevType)\(autostart)"
            }
            let address = d.definition.parentAddress.map { " (parent \($0))" } ?? ""
            return "\(d.uuid) type \(d.mdevType) under \(d.parent)\(address): the parent device is not there\(autostart)"
        }
        let failing = stranded.filter { !restoring($0.uuid) }
        guard !failing.isEmpty else {
            return HostCheck(id: HostCheckID.unparentedMdevs, status: .pass,
                             summary: stranded.isEmpty ? "every autostart or restore-owned mdev has its parent, offering its type"
                                : "\(stranded.count) mdev(s) wait for their parent or its type, and mdevmon's restore is bringing them back",
                             details: stranded.map(line))
        }
        return HostCheck(
            id: HostCheckID.unparentedMdevs, status: .fail,
            summary: "\(failing.count) autostart or restore-owned mdev(s) have no parent device offering their type: they cannot start",
            details: failing.map(line),
            fix: "load the parent's vendor driver, which registers its mdev types (or plug the device); mdevctl list --defined shows each mdev's parent")
    }

    /// Defined domains that would fail to start now: the index's reference problems, or the policy's
    /// (`problems`). A domain that only waits for a restore under way passes: a healthy reboot is no alarm.
    public static func domainsBlocked(_ state: IndexState?, problems policyProblems: [ReferenceProblem]? = nil) -> HostCheck {
        guard let state else {
            return HostCheck(id: HostCheckID.domainsBlocked, status: .warn, summary: "not checked: libvirt was not read",
                             fix: "make libvirt reachable (see the libvirt check)")
        }
        let problems = policyProblems ?? state.referenceProblems
        let lines = problems.map { p in
            let holder = p.heldBy.isEmpty ? "" : " by \(p.heldBy.joined(separator: ", "))"
            return "\(p.domain): mdev \(p.uuid) is \(p.reason.rawValue)\(holder)\(p.domainAutostart ? " (domain autostarts)" : "")"
        }
        guard problems.contains(where: { $0.reason != .restoring }) else {
            return HostCheck(id: HostCheckID.domainsBlocked, status: .pass,
                             summary: problems.isEmpty ? "every defined domain could start now: its mdevs exist, are active and free"
                                 : "every defined domain could start now or waits for a restore under way",
                             details: lines)
        }
        let domains = Set(problems.map(\.domain))
        return HostCheck(
            id: HostCheckID.domainsBlocked, status: .fail,
            summary: "\(domains.count) defined domain(s) could not start now",
            details: lines,
            fix: "per reason: inactive: virsh nodedev-start <device>; missing: define it (mdevctl define) or remove it from the domain (virsh edit <domain>); no_capacity: free an instance of its type on the parent; type_not_offered: load or fix the parent's vendor driver (it registers the types); parent_missing: load the parent's driver; in_use: stop the domain holding it; restoring: wait for mdevmon's restore")
    }

    /// The worst status of a run (pass for none).
    public static func overall(_ checks: [HostCheck]) -> HostCheck.Status {
        checks.map(\.status).max() ?? .pass
    }
}
