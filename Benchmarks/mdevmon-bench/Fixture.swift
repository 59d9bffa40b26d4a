import Foundation
import Glibc
import Monitor

/// N defined mdevs on the real libvirtd, made in bulk by writing mdevctl config files
/// (`/etc/mdevctl.d/<parent>/<uuid>`), which libvirt picks up through inotify.
///
/// Every UUID the bench makes starts with `bec4`; anything with that prefix is the bench's and is
/// removed at start (leftovers of an aborted run) and at exit. The rest looks random, as libvirt's
/// and mdevctl's v4 UUIDs do (sorting and hashing behave as in real use), except the variant digit,
/// which tells the bulk fixture (`8`) from the event benchmark's devices (`9`), and the last group,
/// the device's number, which keeps UUIDs unique.
final class Fixture: @unchecked Sendable {
    // @unchecked: only the orchestrating task mutates `count`; the signal handler only deletes files.
    static let directory = "/etc/mdevctl.d"
    static let uuidPrefix = "bec4"
    static let mdevType = "nvidia-63"

    /// PCI addresses (`0000:00:03.0`) the devices are spread over.
    let parents: [String]
    private(set) var count = 0

    init() throws {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        parents = all.sorted()
        guard !parents.isEmpty else { throw BenchError("no PCI devices in /sys/bus/pci/devices to use as parents") }
    }

    static func bulkUUID(_ i: Int) -> String { uuid(i, variant: "8") }
    static func eventUUID(_ i: Int) -> String { uuid(i, variant: "9") }

    /// `bec4rrrr-rrrr-4rrr-Vrrr-nnnnnnnnnnnn`: r pseudo-random from `i`, V the variant, n = `i`.
    private static func uuid(_ i: Int, variant: Character) -> String {
        // splitmix64: deterministic, so a run's UUIDs are reproducible.
        var z = UInt64(i) &+ (variant == "9" ? 0x5555_5555 : 0) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let r = Array(hex(z, digits: 16))
        return "bec4\(String(r[0..<4]))-\(String(r[4..<8]))-4\(String(r[8..<11]))-\(variant)\(String(r[11..<14]))-\(hex12(i))"
    }

    /// Whether a UUID (or the UUID part of an mdev's node-device name) is an event-benchmark device's.
    static func isEventDevice(uuid: some StringProtocol) -> Bool {
        guard uuid.hasPrefix(uuidPrefix), uuid.count > 19 else { return false }
        return uuid[uuid.index(uuid.startIndex, offsetBy: 19)] == "9"
    }

    /// The same for a node-device name, `mdev_<uuid with underscores>_<parent>`.
    static func isEventDevice(name: String) -> Bool {
        name.hasPrefix("mdev_") && isEventDevice(uuid: name.dropFirst(5))
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    private static func hex12(_ i: Int) -> String { hex(UInt64(i), digits: 12) }

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
