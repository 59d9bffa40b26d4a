/// What mdevmon does only when libvirtd runs on its own host, and what a remote connection
/// (`qemu+tls://`, `qemu+ssh://`, `qemu+tcp://`) does instead: the startup notice and the
/// `mdev_libvirt_feature_available` series say the same.
public enum LocalOnlyFeature: String, CaseIterable, Sendable {
    /// mdevctl's definitions under `/etc/mdevctl.d`.
    case mdevctlFiles = "mdevctl_files"
    /// The inotify watch of libvirt's domain configuration directory (`/etc/libvirt/qemu`).
    case domainConfigWatch = "domain_config_watch"
    /// `doctor`'s and the `mdev_host_check` series' checks of the host's files: mdevctl, udev rules,
    /// kernel modules, sysfs parents, the `mdevmon.service` unit.
    case hostFileChecks = "host_file_checks"

    /// What is missing on a remote connection, and what takes its place.
    public var remotely: String {
        switch self {
        case .mdevctlFiles:
            "mdevctl's files are not read: the full sync asks libvirt about each mdev (one RPC more per device), and an autostart flag libvirt will not tell is unknown"
        case .domainConfigWatch:
            "libvirt's domain configuration files are not watched: libvirt 11 reports a --config attach or detach with a Defined Updated event, libvirt 9 does not, so there it shows only at the domain's next event"
        case .hostFileChecks:
            "the host checks of mdevctl, udev rules, kernel modules, sysfs parents and mdevmon.service are skipped (they would read this machine's files): check them on the libvirt host"
        }
    }

    /// Whether a connection to `uri` has the feature: all but a remote one.
    public func available(uri: String) -> Bool { !LibvirtURI.isRemote(uri) }

    /// The startup notice for a remote URI; nil for a local one.
    public static func remoteNotice(uri: String) -> String? {
        guard LibvirtURI.isRemote(uri) else { return nil }
        return "libvirt at \(uri) is remote: " + allCases.map(\.remotely).joined(separator: "; ")
    }
}
