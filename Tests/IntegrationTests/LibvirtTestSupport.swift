import Foundation
import Monitor
import Testing

/// Facts about the machine's real libvirtd, and helpers to drive it with virsh and mdevctl.
enum LibvirtHost {
    static let uri = "qemu:///system"

    /// CI (`CI=true`) requires the real stack: integration tests then fail instead of being skipped.
    static let required = ProcessInfo.processInfo.environment["CI"] == "true"

    static let reachable: Bool = run("/usr/bin/virsh", ["-c", uri, "version"]).status == 0

    /// Whether integration tests run: always in CI (so a missing libvirtd fails them), else when reachable.
    /// Every integration suite asks this first, so it also makes this process ignore SIGPIPE, as the
    /// daemon does: a libvirtd the tests kill mid-write must not kill the test process (signal 13).
    static var enabled: Bool {
        _ = ignoringBrokenPipes
        return required || reachable
    }

    /// Evaluated by the suites' conditions (`enabled`, `disruptiveTestsEnabled`) before any test runs.
    static let ignoringBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// The first PCI device of the machine, as libvirt names it and as mdevctl addresses it.
    /// libvirt (and so these tests) accepts any existing PCI device as a would-be mdev parent.
    static let pciParent: (name: String, address: String) = {
        let addresses = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []
        let address = addresses.sorted().first ?? "0000:00:00.0"
        let name = "pci_" + address.map { $0 == ":" || $0 == "." ? "_" : $0 }.map(String.init).joined()
        return (name, address)
    }()

    @discardableResult
    static func run(_ tool: String, _ args: [String], input: String? = nil) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        do { try p.run() } catch { return (-1, "", "\(error)") }
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @discardableResult
    static func virsh(_ args: String...) -> (status: Int32, out: String, err: String) {
        run("/usr/bin/virsh", ["-c", uri] + args)
    }

    /// Writes `xml` to a temp file and runs `virsh <command> <args…> <file>`.
    @discardableResult
    static func virsh(_ command: String, _ args: String..., xml: String) -> (status: Int32, out: String, err: String) {
        let path = NSTemporaryDirectory() + "mdevmon-\(UUID().uuidString).xml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(xml.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return run("/usr/bin/virsh", ["-c", uri, command] + args + [path])
    }

    static func newUUID() -> String { UUID().uuidString.lowercased() }

    /// libvirt's name for an mdev: `mdev_<uuid>_<parent addr>` with separators as underscores.
    static func mdevName(uuid: String, parentAddress: String = pciParent.address) -> String {
        "mdev_" + (uuid + "_" + parentAddress).map { "-:.".contains($0) ? "_" : String($0) }.joined()
    }

    static func mdevXML(uuid: String, type: String = "nvidia-63", attrs: [(String, String)] = []) -> String {
        """
        <device>
          <parent>\(pciParent.name)</parent>
          <capability type='mdev'>
            <type id='\(type)'/>
            <uuid>\(uuid)</uuid>
        \(attrs.map { "    <attr name='\($0.0)' value='\($0.1)'/>" }.joined(separator: "\n"))
          </capability>
        </device>
        """
    }

    /// Defines an mdev through libvirt; returns its node-device name.
    static func define(uuid: String, type: String = "nvidia-63", attrs: [(String, String)] = []) throws -> String {
        let r = virsh("nodedev-define", xml: mdevXML(uuid: uuid, type: type, attrs: attrs))
        try #require(r.status == 0, "nodedev-define failed: \(r.err)")
        return mdevName(uuid: uuid)
    }

    /// Removes a definition however it was made; safe to call when it is already gone.
    static func cleanup(uuid: String) {
        virsh("nodedev-undefine", mdevName(uuid: uuid))
        let file = "/etc/mdevctl.d/\(pciParent.address)/\(uuid)"
        if FileManager.default.fileExists(atPath: file) { try? FileManager.default.removeItem(atPath: file) }
    }

    /// Defines a qemu domain with a `<hostdev type='mdev'>` per UUID (`virsh define` takes ~30 s here).
    static func defineDomain(name: String, mdevUUIDs: [String]) throws {
        let r = virsh("define", xml: domainXML(name: name, mdevUUIDs: mdevUUIDs))
        try #require(r.status == 0, "virsh define failed: \(r.err)")
    }

    /// A domain's `<hostdev>` for the mdev `uuid`, as in its XML and for `virsh attach-device`.
    static func hostdevXML(uuid: String) -> String {
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='\(uuid)'/></source></hostdev>"
    }

    /// A domain with no OS that can run here under TCG; `<acpi/>` is what PCI hotplug on `pc` needs.
    static func domainXML(name: String, mdevUUIDs: [String]) -> String {
        """
        <domain type='qemu'>
          <name>\(name)</name>
          <memory unit='MiB'>64</memory>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <features><acpi/></features>
          <devices>
            <emulator>/usr/bin/qemu-system-x86_64</emulator>
        \(mdevUUIDs.map { "    " + hostdevXML(uuid: $0) }.joined(separator: "\n"))
          </devices>
        </domain>
        """
    }
}

extension MonitorService {
    func device(uuid: String) -> MdevDevice? {
        index.snapshot.state.devices.values.first { $0.uuid == uuid }
    }
}

/// The mdevmon executable built next to the test bundle.
let mdevmonBinary: String = {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var candidate = dir.appendingPathComponent("mdevmon").path
    // Swift Testing may run from inside the .xctest bundle directory.
    if !FileManager.default.fileExists(atPath: candidate) {
        candidate = dir.deletingLastPathComponent().appendingPathComponent("mdevmon").path
    }
    return candidate
}()
