internal import CLibvirt
import Foundation
import Synchronization

/// Opens real libvirt connections.
public struct LibvirtConnectorImpl: LibvirtConnector {
    public init() {}

    public func connect(uri: String, readOnly: Bool) throws -> any LibvirtConnection {
        try LibvirtClient(uri: uri, readOnly: readOnly)
    }
}

/// Where a callback delivers its copied values. Retained by libvirt through `opaque` until the free callback.
private final class EventSink: Sendable {
    let continuation: AsyncStream<LibvirtEvent>.Continuation
    init(_ continuation: AsyncStream<LibvirtEvent>.Continuation) { self.continuation = continuation }
}

/// A libvirt connection with node-device and domain callbacks registered. The only type that calls
/// libvirt's connection APIs.
final class LibvirtClient: LibvirtConnection, @unchecked Sendable {
    // @unchecked: `conn` is immutable after init and libvirt's connection API is thread-safe;
    // the mutable callback ids are guarded by `state`.
    let uri: String
    let events: AsyncStream<LibvirtEvent>
    private let continuation: AsyncStream<LibvirtEvent>.Continuation
    private let conn: virConnectPtr
    private let state = Mutex<(callbacks: [Int32], domainCallbacks: [Int32], closeRegistered: Bool, closed: Bool)>(([], [], false, false))

    init(uri: String, readOnly: Bool) throws {
        LibvirtEventLoop.ensureRunning()
        self.uri = uri
        let opened = uri.withCString { readOnly ? virConnectOpenReadOnly($0) : virConnectOpen($0) }
        guard let opened else { throw Self.lastError(operation: "connect to", object: uri) }
        conn = opened
        (events, continuation) = AsyncStream.makeStream(of: LibvirtEvent.self)
        do {
            try register()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    // MARK: callbacks

    private func register() throws {
        // Keepalive notices a dead daemon even when no RPC is in flight: 5 s interval, 3 missed.
        if virConnectSetKeepAlive(conn, 5, 3) < 0 {
            throw Self.lastError(operation: "enable keepalive on", object: uri)
        }
        let closeSink = Unmanaged.passRetained(EventSink(continuation)).toOpaque()
        if virConnectRegisterCloseCallback(conn, { _, reason, opaque in
            let sink = Unmanaged<EventSink>.fromOpaque(opaque!).takeUnretainedValue()
            sink.continuation.yield(.connectionClosed(reason: LibvirtClient.closeReason(reason)))
            sink.continuation.finish()
        }, closeSink, { Unmanaged<EventSink>.fromOpaque($0!).release() }) < 0 {
            Unmanaged<EventSink>.fromOpaque(closeSink).release()
            throw Self.lastError(operation: "register close callback on", object: uri)
        }
        state.withLock { $0.closeRegistered = true }

        typealias Lifecycle = @convention(c) (virConnectPtr?, virNodeDevicePtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Void
        let lifecycle: Lifecycle = { _, dev, event, _, opaque in
            guard let dev, let opaque, let name = virNodeDeviceGetName(dev) else { return }
            let kind: NodeDeviceEventKind
            switch UInt32(event) {
            case VIR_NODE_DEVICE_EVENT_CREATED.rawValue: kind = .created
            case VIR_NODE_DEVICE_EVENT_DELETED.rawValue: kind = .deleted
            case VIR_NODE_DEVICE_EVENT_DEFINED.rawValue: kind = .defined
            case VIR_NODE_DEVICE_EVENT_UNDEFINED.rawValue: kind = .undefined
            default: kind = .updated
            }
            Unmanaged<EventSink>.fromOpaque(opaque).takeUnretainedValue()
                .continuation.yield(.nodeDevice(name: String(cString: name), kind: kind))
        }
        typealias Generic = @convention(c) (virConnectPtr?, virNodeDevicePtr?, UnsafeMutableRawPointer?) -> Void
        let update: Generic = { _, dev, opaque in
            guard let dev, let opaque, let name = virNodeDeviceGetName(dev) else { return }
            Unmanaged<EventSink>.fromOpaque(opaque).takeUnretainedValue()
                .continuation.yield(.nodeDevice(name: String(cString: name), kind: .updated))
        }
        try registerNodeDevice(Int32(VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE.rawValue), unsafeBitCast(lifecycle, to: Generic.self))
        try registerNodeDevice(Int32(VIR_NODE_DEVICE_EVENT_ID_UPDATE.rawValue), update)

        typealias DomainLifecycle = @convention(c) (virConnectPtr?, virDomainPtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
        let domainLifecycle: DomainLifecycle = { _, dom, event, _, opaque in
            guard let dom, let opaque, let name = virDomainGetName(dom) else { return 0 }
            Unmanaged<EventSink>.fromOpaque(opaque).takeUnretainedValue()
                .continuation.yield(.domain(name: String(cString: name), kind: LibvirtClient.domainEventKind(event)))
            return 0
        }
        typealias DomainGeneric = @convention(c) (virConnectPtr?, virDomainPtr?, UnsafeMutableRawPointer?) -> Void
        let sink = Unmanaged.passRetained(EventSink(continuation)).toOpaque()
        let id = virConnectDomainEventRegisterAny(
            conn, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
            unsafeBitCast(domainLifecycle, to: DomainGeneric.self), sink,
            { Unmanaged<EventSink>.fromOpaque($0!).release() })
        guard id >= 0 else {
            Unmanaged<EventSink>.fromOpaque(sink).release()
            throw Self.lastError(operation: "register domain lifecycle events on", object: uri)
        }
        state.withLock { $0.domainCallbacks.append(id) }
    }

    private func registerNodeDevice(_ eventID: Int32, _ callback: virConnectNodeDeviceEventGenericCallback) throws {
        let sink = Unmanaged.passRetained(EventSink(continuation)).toOpaque()
        let id = virConnectNodeDeviceEventRegisterAny(conn, nil, eventID, callback, sink) {
            Unmanaged<EventSink>.fromOpaque($0!).release()
        }
        guard id >= 0 else {
            Unmanaged<EventSink>.fromOpaque(sink).release()
            throw Self.lastError(operation: "register node-device events on", object: uri)
        }
        state.withLock { $0.callbacks.append(id) }
    }

    var isAlive: Bool {
        // Checked under the lock: `close()` must not free the connection while libvirt reads it.
        state.withLock { s in !s.closed && virConnectIsAlive(conn) == 1 }
    }

    func close() {
        let taken = state.withLock { s -> (callbacks: [Int32], domainCallbacks: [Int32], closeRegistered: Bool, closed: Bool) in
            let copy = s
            s = ([], [], false, true)
            return copy
        }
        guard !taken.closed else { return }
        // Deregistering on a dead connection fails harmlessly; libvirt still frees the callbacks on close.
        for id in taken.callbacks { _ = virConnectNodeDeviceEventDeregisterAny(conn, id) }
        for id in taken.domainCallbacks { _ = virConnectDomainEventDeregisterAny(conn, id) }
        if taken.closeRegistered {
            _ = virConnectUnregisterCloseCallback(conn, { _, _, _ in })
        }
        virConnectClose(conn)
        continuation.finish()
    }

    // MARK: queries

    func listNodeDevices(_ which: NodeDeviceListing) throws -> [String] {
        let cap = switch which {
        case .mdevs: VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV.rawValue
        case .mdevParents: VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES.rawValue
        }
        let flags = cap | VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE.rawValue | VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE.rawValue
        var list: UnsafeMutablePointer<virNodeDevicePtr?>?
        let count = virConnectListAllNodeDevices(conn, &list, UInt32(flags))
        guard count >= 0, let list else { throw Self.lastError(operation: "list node devices on", object: uri) }
        defer { free(list) }
        var names: [String] = []
        names.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            guard let dev = list[i] else { continue }
            if let name = virNodeDeviceGetName(dev) { names.append(String(cString: name)) }
            virNodeDeviceFree(dev)
        }
        return names
    }

    func nodeDevice(named name: String) throws -> NodeDeviceRecord? {
        guard let dev = virNodeDeviceLookupByName(conn, name) else {
            let error = Self.lastError(operation: "look up node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        defer { virNodeDeviceFree(dev) }
        guard let raw = virNodeDeviceGetXMLDesc(dev, 0) else {
            let error = Self.lastError(operation: "get XML of node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let xml = String(cString: raw)
        free(raw)
        let active = virNodeDeviceIsActive(dev)
        let persistent = virNodeDeviceIsPersistent(dev)
        if active < 0 || persistent < 0 {
            let error = Self.lastError(operation: "get state of node device", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        var autostart: Int32 = 0
        if virNodeDeviceGetAutostart(dev, &autostart) < 0 {
            let error = Self.lastError(operation: "get autostart of node device", object: name)
            if error.isNoSuchObject { return nil }
            guard error.code == LibvirtError.Code.operationDenied else { throw error }
            autostart = MdevctlAutostart.read(deviceXML: xml) ? 1 : 0
        }
        return NodeDeviceRecord(
            name: name, xml: xml,
            flags: DeviceFlags(active: active == 1, persistent: persistent == 1, autostart: autostart != 0))
    }

    func listDomains() throws -> [String] {
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let count = virConnectListAllDomains(conn, &list, 0)
        guard count >= 0, let list else { throw Self.lastError(operation: "list domains on", object: uri) }
        defer { free(list) }
        var names: [String] = []
        for i in 0..<Int(count) {
            guard let dom = list[i] else { continue }
            if let name = virDomainGetName(dom) { names.append(String(cString: name)) }
            virDomainFree(dom)
        }
        return names
    }

    func domain(named name: String) throws -> DomainRecord? {
        guard let dom = virDomainLookupByName(conn, name) else {
            let error = Self.lastError(operation: "look up domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        defer { virDomainFree(dom) }
        guard let raw = virDomainGetXMLDesc(dom, UInt32(VIR_DOMAIN_XML_INACTIVE.rawValue)) else {
            let error = Self.lastError(operation: "get XML of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        let xml = String(cString: raw)
        free(raw)
        let active = virDomainIsActive(dom)
        let persistent = virDomainIsPersistent(dom)
        var autostart: Int32 = 0
        let autostartResult = virDomainGetAutostart(dom, &autostart)
        if active < 0 || persistent < 0 || autostartResult < 0 {
            let error = Self.lastError(operation: "get state of domain", object: name)
            if error.isNoSuchObject { return nil }
            throw error
        }
        return DomainRecord(
            name: name, inactiveXML: xml, active: active == 1, persistent: persistent == 1,
            autostart: autostart != 0)
    }

    // MARK: actions

    func startNodeDevice(named name: String) throws {
        guard let dev = virNodeDeviceLookupByName(conn, name) else {
            throw Self.lastError(operation: "look up node device", object: name)
        }
        defer { virNodeDeviceFree(dev) }
        if virNodeDeviceCreate(dev, 0) < 0 {
            throw Self.lastError(operation: "start node device", object: name)
        }
    }

    func createNodeDevice(xml: String) throws -> String {
        guard let dev = virNodeDeviceCreateXML(conn, xml, 0) else {
            throw Self.lastError(operation: "create node device on", object: uri)
        }
        defer { virNodeDeviceFree(dev) }
        return virNodeDeviceGetName(dev).map { String(cString: $0) } ?? ""
    }

    // MARK: errors

    /// Reads libvirt's thread-local last error; must run right after the failing call on the same thread.
    static func lastError(operation: String, object: String) -> LibvirtError {
        guard let err = virGetLastError() else {
            return LibvirtError(code: 0, domain: 0, message: "unknown libvirt error", operation: operation, object: object)
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "no message"
        let result = LibvirtError(
            code: Int(err.pointee.code), domain: Int(err.pointee.domain), message: message,
            operation: operation, object: object)
        virResetLastError()
        return result
    }

    static func closeReason(_ reason: Int32) -> String {
        switch UInt32(reason) {
        case VIR_CONNECT_CLOSE_REASON_ERROR.rawValue: "connection error"
        case VIR_CONNECT_CLOSE_REASON_EOF.rawValue: "libvirtd closed the connection (EOF)"
        case VIR_CONNECT_CLOSE_REASON_KEEPALIVE.rawValue: "keepalive timed out"
        case VIR_CONNECT_CLOSE_REASON_CLIENT.rawValue: "closed by client"
        default: "closed (reason \(reason))"
        }
    }

    static func domainEventKind(_ event: Int32) -> DomainEventKind {
        switch UInt32(event) {
        case VIR_DOMAIN_EVENT_DEFINED.rawValue: .defined
        case VIR_DOMAIN_EVENT_UNDEFINED.rawValue: .undefined
        case VIR_DOMAIN_EVENT_STARTED.rawValue: .started
        case VIR_DOMAIN_EVENT_SUSPENDED.rawValue: .suspended
        case VIR_DOMAIN_EVENT_RESUMED.rawValue: .resumed
        case VIR_DOMAIN_EVENT_STOPPED.rawValue: .stopped
        case VIR_DOMAIN_EVENT_SHUTDOWN.rawValue: .shutdown
        case VIR_DOMAIN_EVENT_PMSUSPENDED.rawValue: .pmsuspended
        case VIR_DOMAIN_EVENT_CRASHED.rawValue: .crashed
        default: .unknown
        }
    }
}
