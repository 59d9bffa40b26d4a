import Foundation
import Testing

/// Reads the libvirt XML fixtures the test target copies as a `Fixtures` directory (see Fixtures/README.md).
enum Fixture {
    static func text(_ name: String) throws -> String {
        let directory = try #require(
            Bundle.module.url(forResource: "Fixtures", withExtension: nil),
            "the Fixtures directory is missing from the test bundle")
        return try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }
}
