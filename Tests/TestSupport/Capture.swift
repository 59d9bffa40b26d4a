import Synchronization

/// Strings recorded from any thread, in order: what a hook or an output closure saw.
public final class Capture: Sendable {
    private let lines = Mutex<[String]>([])

    public init() {}

    @Sendable public func append(_ line: String) { lines.withLock { $0.append(line) } }

    public var all: [String] { lines.withLock { $0 } }
}
