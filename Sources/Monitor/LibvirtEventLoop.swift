internal import CLibvirt
import Foundation
import Synchronization

/// libvirt's default event loop, run on one dedicated thread blocked in `virEventRunDefaultImpl`.
///
/// libvirt requires the implementation to be registered before the first connection is opened and
/// only once per process, so this is a process-wide singleton started on first use.
enum LibvirtEventLoop {
    /// Seconds since the loop thread last ran the heartbeat timer; the watchdog uses this to notice
    /// a stuck loop. Updated only after `enableHeartbeat` is called.
    private static let lastBeat = Atomic<Int64>(0)
    private static let heartbeatTimer = Mutex<Int32?>(nil)

    private static let started: Void = {
        // libvirt prints every error to stderr by default; mdevmon reports errors itself.
        virSetErrorFunc(nil, { _, _ in })
        precondition(virInitialize() == 0, "virInitialize failed")
        precondition(virEventRegisterDefaultImpl() == 0, "virEventRegisterDefaultImpl failed")
        let thread = Thread {
            while true {
                if virEventRunDefaultImpl() < 0 {
                    // Only fails on internal errors; avoid a hot loop if it ever does.
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
        }
        thread.name = "libvirt-event-loop"
        thread.start()
    }()

    /// Starts the loop if it is not running yet.
    static func ensureRunning() { _ = started }

    /// Makes the loop thread stamp a heartbeat every `interval` seconds (idempotent).
    static func enableHeartbeat(interval: Int) {
        ensureRunning()
        heartbeatTimer.withLock { timer in
            guard timer == nil else { return }
            lastBeat.store(now(), ordering: .relaxed)
            timer = virEventAddTimeout(Int32(interval * 1000), { _, _ in
                LibvirtEventLoop.lastBeat.store(LibvirtEventLoop.now(), ordering: .relaxed)
            }, nil, nil)
        }
    }

    /// Seconds since the last heartbeat, or nil when heartbeats are off.
    static var heartbeatAge: Int64? {
        guard heartbeatTimer.withLock({ $0 }) != nil else { return nil }
        return now() - lastBeat.load(ordering: .relaxed)
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec)
    }
}

/// Public face of the event-loop health check, for the watchdog.
public enum EventLoopHealth {
    private static let maxAge = Atomic<Int64>(.max)

    /// Starts heartbeats every `interval` seconds; the loop is healthy while the last one is at most
    /// `maxAge` seconds old. Call once when a watchdog is configured.
    public static func enable(interval: Int, maxAge: Int64) {
        Self.maxAge.store(maxAge, ordering: .relaxed)
        LibvirtEventLoop.enableHeartbeat(interval: interval)
    }

    /// True when heartbeats are off or the loop stamped one recently enough.
    public static func isHealthy() -> Bool {
        guard let age = LibvirtEventLoop.heartbeatAge else { return true }
        return age <= maxAge.load(ordering: .relaxed)
    }
}
