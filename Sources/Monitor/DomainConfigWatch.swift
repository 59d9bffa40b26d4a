internal import CLibvirt
import Glibc

/// libvirt 9.0 raises no domain event when `virsh attach-device --config` or `detach-device --config`
/// rewrites a defined domain's configuration (seen on this host and in the e2e guest): it only rewrites
/// the domain's file in its configuration directory. On a local `qemu:///system` connection mdevmon
/// therefore watches that directory with inotify, on libvirt's own event-loop thread (no polling), and
/// treats a rewritten or removed `<name>.xml` like a domain event: the domain is fetched again. Its
/// `autostart/` subdirectory holds a `<name>.xml` link per autostart domain, which `virsh autostart`
/// adds or removes, again without an event: watched the same way when it exists.
///
/// Owned by the `LibvirtClient` it feeds: started with the connection, stopped by its `close()`.
final class DomainConfigWatch: Sendable {
    /// libvirt's configuration directory for `uri`, where mdevmon knows it.
    static func directory(for uri: String) -> String? {
        uri == "qemu:///system" ? "/etc/libvirt/qemu" : nil
    }

    /// libvirt's id of the handle watch.
    private let watch: Int32

    /// Fails when the directory cannot be watched (absent, inotify refused, e.g. `fs.inotify.max_user_instances`
    /// used up): then libvirt's events are all there is, and the error says why.
    init(directory: String, queue: EventQueue) throws(WatchError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw WatchError("inotify_init1: \(String(cString: strerror(errno)))") }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw WatchError("watch \(directory): \(reason)")
        }
        // libvirt creates it with the first autostart domain; the sink adds it when it appears.
        _ = inotify_add_watch(fd, directory + "/autostart", mask)
        // Retained by libvirt until its free callback, which runs once the watch is removed and no
        // callback is running any more: only then is the descriptor closed.
        let sink = Unmanaged.passRetained(ConfigFileSink(fd: fd, directory: directory, mask: mask, queue: queue)).toOpaque()
        let id = virEventAddHandle(fd, Int32(VIR_EVENT_HANDLE_READABLE.rawValue), Self.readable, sink, Self.release)
        guard id >= 0 else {
            Unmanaged<ConfigFileSink>.fromOpaque(sink).release()
            throw WatchError("libvirt's event loop refused the watch")
        }
        watch = id
    }

    struct WatchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    func stop() { _ = virEventRemoveHandle(watch) }

    private static let readable: virEventHandleCallback = { _, _, _, opaque in
        guard let opaque else { return }
        Unmanaged<ConfigFileSink>.fromOpaque(opaque).takeUnretainedValue().drain()
    }

    private static let release: virFreeCallback = { opaque in
        if let opaque { Unmanaged<ConfigFileSink>.fromOpaque(opaque).release() }
    }
}

/// The inotify descriptor and where its news go; closes the descriptor when libvirt lets go of it.
private final class ConfigFileSink: Sendable {
    let fd: Int32
    let directory: String
    let mask: UInt32
    let queue: EventQueue

    init(fd: Int32, directory: String, mask: UInt32, queue: EventQueue) {
        self.fd = fd
        self.directory = directory
        self.mask = mask
        self.queue = queue
    }

    deinit { close(fd) }

    /// Reads every pending inotify record (`struct inotify_event`: wd, mask, cookie, len, then `len`
    /// bytes of NUL-padded name) and pushes one domain event per `<name>.xml`; libvirt's temporary
    /// `<name>.xml.new` is not one. When the kernel dropped records (its queue overflowed), nobody knows
    /// which domains changed: the Monitor resyncs.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            var offset = 0
            while offset + 16 <= n {
                let happened = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                if happened & UInt32(IN_Q_OVERFLOW) != 0 { queue.requestResync() }
                let length = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
                let name = buffer[(offset + 16)..<min(offset + 16 + length, n)].prefix { $0 != 0 }
                offset += 16 + length
                let file = String(decoding: name, as: UTF8.self)
                if file == "autostart", happened & UInt32(IN_CREATE | IN_ISDIR) == UInt32(IN_CREATE | IN_ISDIR) {
                    watchAutostart()
                    continue
                }
                pushDomain(ofFile: file)
            }
        }
    }

    /// `<name>.xml` (a configuration, or an autostart link) concerns domain `name`; other files none.
    private func pushDomain(ofFile file: String) {
        guard file.hasSuffix(".xml"), file.count > 4 else { return }
        queue.push(.domain(name: String(file.dropLast(4)), kind: .configWritten))
    }

    /// The first `virsh autostart` created the directory and, at once, its link: watch it, and take
    /// what is already there as changed, since the link may predate the watch.
    private func watchAutostart() {
        let path = directory + "/autostart"
        guard inotify_add_watch(fd, path, mask) >= 0, let dir = opendir(path) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            pushDomain(ofFile: file)
        }
    }
}
