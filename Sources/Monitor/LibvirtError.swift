/// A failed libvirt call: which operation on which object, and what libvirt said (read right after the call).
public struct LibvirtError: Error, Hashable, Sendable, CustomStringConvertible {
    /// libvirt's `virErrorNumber` (e.g. 38 system error, 55 operation invalid).
    public var code: Int
    /// libvirt's `virErrorDomain` (which subsystem raised it).
    public var domain: Int
    public var message: String
    /// What mdevmon was doing: `connect`, `list node devices`, `start node device`, …
    public var operation: String
    /// The URI, device or domain the operation concerned.
    public var object: String

    public init(code: Int, domain: Int, message: String, operation: String, object: String) {
        self.code = code
        self.domain = domain
        self.message = message
        self.operation = operation
        self.object = object
    }

    public var description: String { "\(operation) \(object): \(message) (libvirt error \(code))" }

    /// libvirt codes mdevmon treats specially (`virErrorNumber` in virterror.h; checked against the
    /// real library by the integration tests).
    public enum Code {
        public static let noConnect = 5
        public static let invalidConnection = 6
        public static let operationDenied = 29
        public static let systemError = 38
        public static let rpc = 39
        public static let noDomain = 42
        public static let authFailed = 45
        public static let noNodeDevice = 53
        public static let authUnavailable = 94
    }

    /// The object no longer exists (it vanished between an event and the fetch).
    public var isNoSuchObject: Bool { code == Code.noNodeDevice || code == Code.noDomain }
}
