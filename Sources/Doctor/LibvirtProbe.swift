public import Monitor

/// What `mdevmon doctor` learns from one short-lived libvirt connection: whether libvirt answers,
/// its version, the access granted, and whether its node-device driver is there.
public struct LibvirtProbe: Hashable, Sendable {
    public var uri: String
    public var readOnly: Bool
    /// nil when libvirt was reached; else why not (libvirt's message).
    public var connectError: String?
    /// The daemon's libvirt version; nil when libvirt did not tell it.
    public var version: LibvirtVersion?
    /// nil when the driver answered a node-device listing; else libvirt's message.
    public var nodeDeviceError: String?

    public init(uri: String, readOnly: Bool, connectError: String? = nil, version: LibvirtVersion? = nil,
                nodeDeviceError: String? = nil) {
        self.uri = uri
        self.readOnly = readOnly
        self.connectError = connectError
        self.version = version
        self.nodeDeviceError = nodeDeviceError
    }

    /// Connects to `uri` with the access mdevmon would use (a one-shot connection, closed before returning).
    public static func run(uri: String, readOnly: Bool) -> LibvirtProbe {
        run(uri: uri, readOnly: readOnly) { _ in () }.probe
    }

    /// Probes `uri` and, when libvirt and its node-device driver answered, hands the same connection to
    /// `read` before closing it: `mdevmon doctor` reads the index through the connection it probed.
    public static func run<T>(
        uri: String, readOnly: Bool, then read: (any LibvirtConnection) -> T?
    ) -> (probe: LibvirtProbe, read: T?) {
        var probe = LibvirtProbe(uri: uri, readOnly: readOnly)
        let connection: any LibvirtConnection
        do {
            connection = try LibvirtConnectorImpl.connectOnce(uri: uri, readOnly: readOnly)
        } catch {
            probe.connectError = message(error)
            return (probe, nil)
        }
        defer { connection.close() }
        probe.version = connection.version == .unknown ? nil : connection.version
        do {
            _ = try connection.listNodeDevices(.mdevParents)
        } catch {
            probe.nodeDeviceError = message(error)
            return (probe, nil)
        }
        return (probe, read(connection))
    }

    private static func message(_ error: any Error) -> String {
        (error as? LibvirtError)?.message ?? "\(error)"
    }
}
