internal import CLibvirt
import Glibc

/// libvirt 9.0 raises no domain event when `virsh attach-device --config` or `detach-device --config`
/// rewrites a defined domain's configuration (seen on this host and in the e2e guest): it only rewrites
/// the domain's file in its configuration directory. On a local `qemu:///system` connection mdevmon
/// therefore watches that directory with inotify, on libvirt's own event-loop thread (no polling), and
/// treats a rewritten or removed `<name>.xml` like a domain event: the domain is fetched again.
///
/// Owned by the `LibvirtClient` it feeds: started with the connection, stopped by its `close()`.
final class DomainConfigWatch: Sendable {
    /// libvirt's configuration directory for `uri`, where mdevmon knows it.
    static func directory(for uri: String) -> String? {
        uri == "qemu:///system" ? "/etc/libvirt/qemu" : nil
    }

    /// libvirt's id of the handle watch.
    private let watch: Int32

    /// nil when the directory cannot be watched (absent, inotify refused): then libvirt's events are all
    /// there is, as before.
    init?(directory: String, queue: EventQueue) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            close(fd)
            return nil
        }
        // Retained by libvirt until its free callback, which runs once the watch is removed and no
        // callback is running any more: only then is the descriptor closed.
        let sink = Unmanaged.passRetained(ConfigFileSink(fd: fd, queue: queue)).toOpaque()
        let id = virEventAddHandle(fd, Int32(VIR_EVENT_HANDLE_READABLE.rawValue), Self.readable, sink, Self.release)
        guard id >= 0 else {
            Unmanaged<ConfigFileSink>.fromOpaque(sink).release()
            return nil
        }
        watch = id
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
    let queue: EventQueue

    init(fd: Int32, queue: EventQueue) {
        self.fd = fd
        self.queue = queue
    }

    deinit { close(fd) }

    /// Reads every pending inotify record (`struct inotify_event`: wd, mask, cookie, len, then `len`
    /// bytes of NUL-padded name) and pushes one domain event per `<name>.xml`; libvirt's temporary
    /// `<name>.xml.new` is not one.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            var offset = 0
            while offset + 16 <= n {
                let length = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
                let name = buffer[(offset + 16)..<min(offset + 16 + length, n)].prefix { $0 != 0 }
                offset += 16 + length
                let file = String(decoding: name, as: UTF8.self)
                guard file.hasSuffix(".xml"), file.count > 4 else { continue }
                queue.push(.domain(name: String(file.dropLast(4)), kind: .configWritten))
            }
        }
    }
}
