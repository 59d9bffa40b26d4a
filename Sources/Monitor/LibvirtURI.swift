/// Facts about a libvirt URI that need no connection: whether its libvirtd runs on this machine (then
/// mdevctl's files, libvirt's domain files and the kernel's boot id are its own), or on another host.
public enum LibvirtURI {
    /// `qemu:///system`, `qemu:///session` and `qemu+unix:///system` reach a libvirtd on this machine;
    /// `qemu+ssh://host/system` or `qemu://host/system` do not, and neither does libvirt's `test` driver,
    /// whose devices are not mdevctl's.
    public static func isLocal(_ uri: String) -> Bool {
        guard let scheme = uri.range(of: "://") else { return false }
        let driver = uri[..<scheme.lowerBound].split(separator: "+", maxSplits: 1).first
        return driver != "test" && !isRemote(uri)
    }

    /// Whether `uri` names another host or a network transport (`qemu+tls://h/system`, `qemu://h/system`,
    /// `qemu+tcp:///system`); `qemu+unix:///system` and `test:///default` are not remote.
    public static func isRemote(_ uri: String) -> Bool {
        guard let scheme = uri.range(of: "://") else { return false }
        let transport = uri[..<scheme.lowerBound].split(separator: "+", maxSplits: 1).dropFirst().first
        let rest = uri[scheme.upperBound...]
        return (!rest.isEmpty && !rest.hasPrefix("/")) || (transport != nil && transport != "unix")
    }
}
