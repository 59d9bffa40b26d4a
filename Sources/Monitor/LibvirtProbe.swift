internal import CLibvirt
import Glibc

/// What `mdevmon doctor` learns from one short-lived libvirt connection: whether libvirt answers,
/// its version, the access granted, and whether its node-device driver is there. Opens its own
/// connection (no callbacks, no event loop) and closes it before returning.
public struct LibvirtProbe: Hashable, Sendable {
    public var uri: String
    public var readOnly: Bool
    /// nil when libvirt was reached; else why not (libvirt's message).
    public var connectError: String?
    /// The daemon's libvirt version, `major.minor.micro`.
    public var version: String?
    /// nil when the driver answered a node-device listing; else libvirt's message.
    public var nodeDeviceError: String?

    public init(uri: String, readOnly: Bool, connectError: String? = nil, version: String? = nil, nodeDeviceError: String? = nil) {
        self.uri = uri
        self.readOnly = readOnly
        self.connectError = connectError
        self.version = version
        self.nodeDeviceError = nodeDeviceError
    }

    /// Connects to `uri` with the access mdevmon would use.
    public static func run(uri: String, readOnly: Bool) -> LibvirtProbe {
        var probe = LibvirtProbe(uri: uri, readOnly: readOnly)
        let opened = uri.withCString { readOnly ? virConnectOpenReadOnly($0) : virConnectOpen($0) }
        guard let conn = opened else {
            probe.connectError = LibvirtClient.lastError(operation: "connect to", object: uri).message
            return probe
        }
        defer { virConnectClose(conn) }
        var version: UInt = 0
        if virConnectGetLibVersion(conn, &version) == 0 {
            probe.version = "\(version / 1_000_000).\(version / 1000 % 1000).\(version % 1000)"
        } else {
            virResetLastError()
        }
        var list: UnsafeMutablePointer<virNodeDevicePtr?>?
        let count = virConnectListAllNodeDevices(conn, &list, 0)
        if count < 0 {
            probe.nodeDeviceError = LibvirtClient.lastError(operation: "list node devices on", object: uri).message
        } else if let list {
            for i in 0..<Int(count) { if let d = list[i] { virNodeDeviceFree(d) } }
            free(list)
        }
        return probe
    }
}
