public import Monitor

/// What the restore policy does to libvirt; the real one goes through the Monitor's connection,
/// tests substitute their own.
public protocol DeviceActions: Sendable {
    /// Whether libvirt knows a node device by this name (a parent may be any node device).
    func nodeDeviceExists(_ name: String) async throws -> Bool
    func start(deviceNamed name: String) async throws
    func create(xml: String) async throws -> String
}

/// `DeviceActions` over the Monitor's live libvirt connection.
public struct MonitorDeviceActions: DeviceActions {
    let monitor: MonitorService

    public init(monitor: MonitorService) { self.monitor = monitor }

    public func nodeDeviceExists(_ name: String) async throws -> Bool {
        try await monitor.withConnection("look up node device \(name)") { try $0.nodeDevice(named: name) != nil }
    }

    public func start(deviceNamed name: String) async throws {
        try await monitor.withConnection("start node device \(name)") { try $0.startNodeDevice(named: name) }
    }

    public func create(xml: String) async throws -> String {
        try await monitor.withConnection("create a node device") { try $0.createNodeDevice(xml: xml) }
    }
}
