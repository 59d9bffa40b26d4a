import Foundation

/// A fresh directory under the system temp dir, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    /// The name is short on purpose: tests bind Unix sockets inside, whose paths are limited to 107 bytes.
    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mdevmon-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `contents` to the file `name` inside; returns the file's path.
    public func file(_ name: String, _ contents: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The names of the entries inside, sorted.
    public var files: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
