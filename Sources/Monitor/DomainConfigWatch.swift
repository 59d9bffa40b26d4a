internal import CLibvirt
import Glibc
import Synchronization

/// libvirt 9.0 raises no domain event when `virsh attach-device --config` or `detach-device --config`
/// rewrites a defined domain's configuration (seen on this host and in the e2e guest): it only rewrites
/// the domain's file in its configuration directory. On a local `qemu:///system` connection mdevmon
/// therefore watches that directory with inotify, on libvirt's own event-loop thread (no polling), and
/// treats a rewritten or removed `<name>.xml` like a domain event: the domain is fetched again. Its
/// `autostart/` subdirectory holds a `<name>.xml` link per autostart domain, which `virsh autostart`
/// adds or removes, again without an event: watched the same way when it exists.
///
/// A directory removed, or replaced by a rename, ends its inotify watch: the parent is watched too, so
/// the directory is watched again when one by that name is back, and the Monitor resyncs (saying why).
///
/// Owned by the `LibvirtClient` it feeds: started with the connection, stopped by its `close()`.
final class DomainConfigWatch: Sendable {
    /// libvirt's configuration directory for `uri`, where mdevmon knows it.
    static func directory(for uri: String) -> String? {
        uri == "qemu:///system" || uri.hasPrefix("qemu+unix:///system") ? "/etc/libvirt/qemu" : nil
    }

    /// libvirt's id of the handle watch.
    private let watch: Int32

    /// Fails when the directory cannot be watched (absent, inotify refused, e.g. `fs.inotify.max_user_instances`
    /// used up): then libvirt's events are all there is, and the error says why.
    init(directory: String, queue: EventQueue) throws(WatchError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw WatchError("inotify_init1: \(String(cString: strerror(errno)))") }
        // Retained by libvirt until its free callback, which runs once the watch is removed and no
        // callback is running any more: only then is the descriptor closed.
        let sink = ConfigFileSink(fd: fd, directory: directory, queue: queue)
        if let reason = sink.watchDirectory() { throw WatchError("watch \(directory): \(reason)") }
        // Its parent, so that a directory removed, or replaced by a rename, is watched again when it is back.
        sink.watchParent()
        let opaque = Unmanaged.passRetained(sink).toOpaque()
        let id = virEventAddHandle(fd, Int32(VIR_EVENT_HANDLE_READABLE.rawValue), Self.readable, opaque, Self.release)
        guard id >= 0 else {
            Unmanaged<ConfigFileSink>.fromOpaque(opaque).release()
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

/// The inotify descriptor, its watches and where their news go; closes the descriptor when libvirt lets
/// go of it. Three watches: the directory, its `autostart/` subdirectory once it exists, and the parent,
/// for a directory of that name appearing again. The kernel ends a watch when its directory goes
/// (`IN_DELETE_SELF`, then `IN_IGNORED`); one moved away (`IN_MOVE_SELF`) would follow it to its new
/// name, so mdevmon ends it.
private final class ConfigFileSink: Sendable {
    static let fileMask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE)
    static let directoryMask = fileMask | UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
    static let parentMask = UInt32(IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)

    /// Watch descriptors; touched on libvirt's event-loop thread only (and in `init` before that).
    private struct Watches {
        var directory: Int32?
        var autostart: Int32?
        var parent: Int32?
    }

    let fd: Int32
    let directory: String
    let queue: EventQueue
    /// The parent directory and the directory's name in it.
    private let parent: String, name: String
    private let watches = Mutex(Watches())

    init(fd: Int32, directory: String, queue: EventQueue) {
        self.fd = fd
        self.directory = directory
        self.queue = queue
        let slash = directory.lastIndex(of: "/") ?? directory.startIndex
        parent = slash == directory.startIndex ? "/" : String(directory[..<slash])
        name = String(directory[directory.index(after: slash)...])
    }

    deinit { close(fd) }

    /// Watches the directory (and `autostart/` in it) as it is now, replacing the watches of an earlier
    /// one. - Returns: why it cannot be watched, or nil.
    func watchDirectory() -> String? {
        let wd = inotify_add_watch(fd, directory, Self.directoryMask)
        guard wd >= 0 else { return String(cString: strerror(errno)) }
        // Watching what is already watched returns its descriptor: then nothing changed.
        guard let (old, oldAutostart) = watches.withLock({ w -> (Int32?, Int32?)? in
            guard w.directory != wd else { return nil }
            defer { w.directory = wd; w.autostart = nil }
            return (w.directory, w.autostart)
        }) else { return nil }
        if let old { inotify_rm_watch(fd, old) }
        if let oldAutostart { inotify_rm_watch(fd, oldAutostart) }
        // libvirt creates it with the first autostart domain; `drain` adds it when it appears.
        let autostart = inotify_add_watch(fd, directory + "/autostart", Self.fileMask)
        if autostart >= 0 { watches.withLock { $0.autostart = autostart } }
        return nil
    }

    func watchParent() {
        let wd = inotify_add_watch(fd, parent, Self.parentMask)
        if wd >= 0 { watches.withLock { $0.parent = wd } }
    }

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
                let wd = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
                let happened = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                let length = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
                let name = buffer[(offset + 16)..<min(offset + 16 + length, n)].prefix { $0 != 0 }
                offset += 16 + length
                if happened & UInt32(IN_Q_OVERFLOW) != 0 {
                    queue.requestResync(.overflow)
                    continue
                }
                handle(wd: wd, happened: happened, file: String(decoding: name, as: UTF8.self))
            }
        }
    }

    private func handle(wd: Int32, happened: UInt32, file: String) {
        let w = watches.withLock { $0 }
        let gone = happened & UInt32(IN_IGNORED) != 0
        if wd == w.directory {
            if gone || happened & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                directoryLost(wd, moved: happened & UInt32(IN_MOVE_SELF) != 0)
            } else if file == "autostart", happened & UInt32(IN_CREATE | IN_ISDIR) == UInt32(IN_CREATE | IN_ISDIR) {
                watchAutostart()
            } else {
                pushDomain(ofFile: file)
            }
        } else if wd == w.autostart {
            if gone { watches.withLock { $0.autostart = nil } } else { pushDomain(ofFile: file) }
        } else if wd == w.parent {
            if gone {
                watches.withLock { $0.parent = nil }
            } else if file == name, happened & UInt32(IN_ISDIR) != 0, watchDirectory() == nil,
                      watches.withLock({ $0.directory }) != w.directory {
                queue.requestResync(.configDirectoryBack(directory))
            }
        }
        // Any other descriptor is a watch already replaced or ended: its last records concern nothing.
    }

    /// The directory was removed or moved away: end its watches (a moved one would follow it), watch a
    /// directory already there by that name (a rename replaced it), else wait for the parent to show one.
    private func directoryLost(_ wd: Int32, moved: Bool) {
        let autostart = watches.withLock { w in
            defer { w.directory = nil; w.autostart = nil }
            return w.autostart
        }
        if moved { inotify_rm_watch(fd, wd) }
        if let autostart { inotify_rm_watch(fd, autostart) }
        if watchDirectory() == nil {
            queue.requestResync(.configDirectoryBack(directory))
        } else {
            queue.requestResync(.configDirectoryLost(directory, watchingForReturn: watches.withLock { $0.parent } != nil))
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
        let wd = inotify_add_watch(fd, path, Self.fileMask)
        guard wd >= 0 else { return }
        watches.withLock { $0.autostart = wd }
        guard let dir = opendir(path) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            pushDomain(ofFile: file)
        }
    }
}
