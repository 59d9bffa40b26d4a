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

    /// A watch ends with its directory: removed and created again, or moved away and replaced by a
    /// rename (how configuration tools swap a directory), the new one is watched, after one resync for
    /// what changed in between; the old one, moved elsewhere, is no longer libvirt's and not watched.
    @Test func aDirectoryRemovedOrReplacedIsWatchedAgain() async throws {
        LibvirtEventLoop.ensureRunning()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mdevmon-rewatch-\(UUID().uuidString)").path
        let dir = base + "/qemu"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let queue = EventQueue()
        let watch = try DomainConfigWatch(directory: dir, queue: queue)
        defer { watch.stop() }
        // A watch that died would leave `next()` waiting forever: end the queue after a while instead.
        let timeout = Task {
            try? await Task.sleep(for: .seconds(20))
            queue.finish()
        }
        defer { timeout.cancel() }
        /// The work handed out up to the first that `stop` accepts; nil when the queue ended first.
        func take(until stop: (LibvirtWork) -> Bool) async -> [LibvirtWork]? {
            var seen: [LibvirtWork] = []
            while let next = await queue.next() {
                seen.append(next.work)
                if stop(next.work) { return seen }
            }
            return nil
        }
        func isBack(_ work: LibvirtWork) -> Bool {
            if case .resync(let reasons) = work { reasons.contains(.configDirectoryBack(dir)) } else { false }
        }
        func isDomain(_ name: String) -> (LibvirtWork) -> Bool {
            { $0 == .domain(name: name, kinds: [.configWritten]) }
        }

        try "<domain/>".write(toFile: dir + "/vm1.xml", atomically: false, encoding: .utf8)
        #expect(await take(until: isDomain("vm1")) != nil)

        // rm -r, mkdir: a resync, then the new directory's files are events again.
        try FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let removed = try #require(await take(until: isBack), "no resync after the directory came back")
        #expect(removed.allSatisfy { if case .resync = $0 { true } else { $0 == .domain(name: "vm1", kinds: [.configWritten]) } }, "\(removed)")
        try "<domain/>".write(toFile: dir + "/vm2.xml", atomically: false, encoding: .utf8)
        #expect(await take(until: isDomain("vm2")) != nil, "a change in the re-created directory was not seen")

        // mv qemu qemu.old; mv qemu.new qemu.
        try FileManager.default.createDirectory(atPath: base + "/qemu.new", withIntermediateDirectories: false)
        #expect(rename(dir, base + "/qemu.old") == 0 && rename(base + "/qemu.new", dir) == 0)
        #expect(await take(until: isBack) != nil, "no resync after the directory was replaced")
        try "<domain/>".write(toFile: base + "/qemu.old/stale.xml", atomically: false, encoding: .utf8)
        try "<domain/>".write(toFile: dir + "/vm3.xml", atomically: false, encoding: .utf8)
        let replaced = try #require(await take(until: isDomain("vm3")), "a change in the replacing directory was not seen")
        #expect(!replaced.contains(.domain(name: "stale", kinds: [.configWritten])), "the moved-away directory is still watched")
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
