import Foundation
import Testing
@testable import Monitor

/// The inotify watch on libvirt's domain configuration directory, on libvirt's event loop (no libvirtd
/// needed): files written the way libvirt writes them become domain events.
@Suite struct DomainConfigWatchTests {
    @Test func rewrittenAndRemovedDomainFilesBecomeDomainEvents() async throws {
        LibvirtEventLoop.ensureRunning()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdevmon-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = EventQueue()
        let watch = try DomainConfigWatch(directory: dir, queue: queue)
        defer { watch.stop() }

        // libvirt's virFileRewrite: write <name>.xml.new, then rename it over <name>.xml.
        try "<domain/>".write(toFile: dir + "/vm1.xml.new", atomically: false, encoding: .utf8)
        #expect(rename(dir + "/vm1.xml.new", dir + "/vm1.xml") == 0)
        let first = await queue.next()
        #expect(first?.work == .domain(name: "vm1", kinds: [.configWritten]))
        #expect(first?.counts[EventCounterKey(source: "domain", event: "config_written")] ?? 0 >= 1)

        // A temporary file alone is no event; undefining removes the file. Events until vm1's removal
        // (a file written in place may count twice, created and closed: coalesced or fetched twice).
        try "<domain/>".write(toFile: dir + "/half.xml.new", atomically: false, encoding: .utf8)
        try "<domain/>".write(toFile: dir + "/marker.xml", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dir + "/vm1.xml")
        var names: [String] = []
        while let next = await queue.next(), case .domain(let name, let kinds) = next.work {
            #expect(kinds == [.configWritten])
            names.append(name)
            if name == "vm1" { break }
        }
        #expect(names.first == "marker" && names.last == "vm1" && !names.contains("half") && !names.contains("half.xml"))

        // `virsh autostart`: the first one creates autostart/ and its link at once.
        try FileManager.default.createDirectory(atPath: dir + "/autostart", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: dir + "/autostart/vm2.xml", withDestinationPath: dir + "/vm2.xml")
        #expect(await queue.next()?.work == .domain(name: "vm2", kinds: [.configWritten]))
        try FileManager.default.removeItem(atPath: dir + "/autostart/vm2.xml")
        #expect(await queue.next()?.work == .domain(name: "vm2", kinds: [.configWritten]))
    }

    @Test func onlyTheSystemQemuURIHasAKnownDirectory() {
        #expect(DomainConfigWatch.directory(for: "qemu:///system") == "/etc/libvirt/qemu")
        #expect(DomainConfigWatch.directory(for: "qemu:///session") == nil)
        #expect(DomainConfigWatch.directory(for: "test:///default") == nil)
        #expect(throws: DomainConfigWatch.WatchError.self) {
            try DomainConfigWatch(directory: "/nonexistent-\(UUID().uuidString)", queue: EventQueue())
        }
    }
}
