import Foundation

/// What a process holds, read from outside: libvirtd's client list, open fds, resident memory.
enum ProcessResources {
    /// libvirtd clients whose peer is process `pid` (`virt-admin srv-clients-list` + `client-info`).
    static func libvirtdClients(of pid: Int32) -> Int? {
        let list = LibvirtHost.run("/usr/bin/virt-admin", ["srv-clients-list", "libvirtd"])
        guard list.status == 0 else { return nil }
        var count = 0
        for line in list.out.split(separator: "\n") {
            guard let id = line.split(separator: " ", omittingEmptySubsequences: true).first.flatMap({ Int($0) }) else { continue }
            let info = LibvirtHost.run("/usr/bin/virt-admin", ["client-info", "libvirtd", String(id)])
            // A client that disconnected between the list and the query is not ours any more.
            guard info.status == 0 else { continue }
            let owner = info.out.split(separator: "\n").first { $0.hasPrefix("unix_process_id") }?
                .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) }
            if owner == String(pid) { count += 1 }
        }
        return count
    }

    /// Open file descriptors of `pid`.
    static func openFDs(of pid: Int32 = getpid()) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    /// inotify instances `pid` holds open (mdevmon's `DomainConfigWatch`, one per live local connection).
    static func inotifyFDs(of pid: Int32 = getpid()) -> Int {
        fdTargets(of: pid).count { $0 == "anon_inode:inotify" }
    }

    /// What each open fd of `pid` points at (`socket:[…]`, `pipe:[…]`, a path), for failure messages.
    static func fdTargets(of pid: Int32 = getpid()) -> [String] {
        let dir = "/proc/\(pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0)
        }.sorted()
    }

    /// Open fds of `pid` other than run-loop machinery (`anon_inode:[eventpoll]`, `[eventfd]`, `[timerfd]`).
    static func leakableFDs(of pid: Int32 = getpid()) -> Int {
        let runLoop: Set = ["anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[timerfd]"]
        return fdTargets(of: pid).count { !runLoop.contains($0) }
    }

    /// How many open fds of `pid` point at each kind of target (`socket`, `pipe`, `anon_inode:[eventfd]`,
    /// a path), for the soak's per-round line.
    static func fdKinds(of pid: Int32 = getpid()) -> String {
        let kinds = fdTargets(of: pid).map { target in
            target.hasPrefix("socket:") ? "socket" : target.hasPrefix("pipe:") ? "pipe" : target
        }
        return Dictionary(kinds.map { ($0, 1) }, uniquingKeysWith: +).sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// Resident set size of `pid` in KiB (`VmRSS`).
    static func rssKiB(of pid: Int32 = getpid()) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? 0
    }
}
