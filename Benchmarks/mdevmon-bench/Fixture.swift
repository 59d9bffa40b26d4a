import Foundation
import Glibc
import Monitor

/// N defined mdevs on the real libvirtd, made in bulk by writing mdevctl config files
/// (`/etc/mdevctl.d/<parent>/<uuid>`), which libvirt picks up through inotify.
///
/// Every UUID the bench makes starts with `bec4`: `bec40000-…` for the bulk fixture, `bec40001-…`
/// for the devices the event benchmark defines and undefines. Anything with that prefix is the
/// bench's and is removed at start (leftovers of an aborted run) and at exit.
final class Fixture: @unchecked Sendable {
    // @unchecked: only the orchestrating task mutates `count`; the signal handler only deletes files.
    static let directory = "/etc/mdevctl.d"
    static let uuidPrefix = "bec4"
    static let bulkPrefix = "bec40000-0000-4000-8000-"
    static let eventPrefix = "bec40001-0000-4000-8000-"
    static let mdevType = "nvidia-63"

    /// PCI addresses (`0000:00:03.0`) the devices are spread over.
    let parents: [String]
    private(set) var count = 0

    init() throws {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        parents = all.sorted()
        guard !parents.isEmpty else { throw BenchError("no PCI devices in /sys/bus/pci/devices to use as parents") }
    }

    static func bulkUUID(_ i: Int) -> String { bulkPrefix + hex12(i) }
    static func eventUUID(_ i: Int) -> String { eventPrefix + hex12(i) }

    private static func hex12(_ i: Int) -> String {
        let digits = String(i, radix: 16)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// libvirt's node-device name of a PCI address: `0000:00:03.0` → `pci_0000_00_03_0`.
    static func nodeName(pci: String) -> String {
        "pci_" + pci.replacingOccurrences(of: ":", with: "_").replacingOccurrences(of: ".", with: "_")
    }

    func parent(for i: Int) -> String { parents[i % parents.count] }

    /// Writes config files until `n` bulk devices exist (it never shrinks).
    func grow(to n: Int) throws {
        guard n > count else { return }
        for parent in parents {
            try FileManager.default.createDirectory(atPath: "\(Self.directory)/\(parent)", withIntermediateDirectories: true)
        }
        let config = Data(#"{"mdev_type": "\#(Self.mdevType)", "start": "manual", "attrs": []}"#.utf8 + [0x0A])
        for i in count..<n {
            let path = "\(Self.directory)/\(parent(for: i))/\(Self.bulkUUID(i))"
            guard FileManager.default.createFile(atPath: path, contents: config) else {
                throw BenchError("cannot write \(path)")
            }
        }
        count = n
    }

    /// Waits until libvirt lists exactly `expected` of the bench's devices (bulk and event ones).
    /// - Returns: Seconds waited.
    @discardableResult
    static func waitForLibvirt(_ connection: any LibvirtConnection, expected: Int, timeout: Double) throws -> Double {
        let start = Mono.now()
        var seen = -1
        while true {
            seen = try connection.listNodeDevices(.mdevs).filter { $0.hasPrefix("mdev_\(uuidPrefix)") }.count
            let waited = Mono.ms(start, Mono.now()) / 1000
            if seen == expected { return waited }
            if waited > timeout {
                throw BenchError("libvirt lists \(seen) bench mdevs, expected \(expected), after \(Int(timeout)) s")
            }
            usleep(100_000)
        }
    }

    /// Deletes every config file with the bench's prefix, under any parent. Safe to call from a
    /// signal handler's queue and more than once. - Returns: How many files it removed.
    @discardableResult
    static func removeAll() -> Int {
        var removed = 0
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for dir in dirs where dir != "scripts.d" {
            let path = "\(directory)/\(dir)"
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for file in files where file.hasPrefix(uuidPrefix) {
                if unlink("\(path)/\(file)") == 0 { removed += 1 }
            }
        }
        return removed
    }
}
