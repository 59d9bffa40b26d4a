import Foundation
import Monitor
import Policy
import Synchronization
import TestSupport
import Testing

/// Restores after a reboot talk to libvirt at most `restore.max_concurrent` at once, and all finish.
@Suite struct RestoreConcurrencyTests {
    @Test func fortyRestoresRunAtMostThreeLibvirtCallsAtOnce() async throws {
        let uuids = (0..<40).map { _ in Sample.uuid() }
        let initial = IndexState.with(uuids.map { Sample.device($0) })
        let previous = PersistedState(bootID: "previous-boot", active: uuids.map { Sample.saved($0) })
        let inFlight = Mutex((now: 0, max: 0))
        let hooks: (DeviceIndex) -> FakeDeviceActions.Hooks = { index in
            FakeDeviceActions.Hooks(beforeAction: { name in
                inFlight.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
                // A start that takes a while, as libvirt's does, so overlapping calls would show.
                try? await Task.sleep(for: .milliseconds(5))
                inFlight.withLock { $0.now -= 1 }
                let uuid = uuids.first { Sample.name($0) == name }!
                await index.mutate { $0.upsertDevice(Sample.definition(uuid), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            })
        }
        try await PolicyHarness.run(initial: initial, previous: previous, config: fastConfig { $0.restore.maxConcurrent = 3 },
                                    hooks: hooks) { h in
            #expect(await eventually(timeout: .seconds(30)) { h.count("success") == 40 })
            #expect(inFlight.withLock { $0.max } <= 3, "at most 3 libvirt calls at once, saw \(inFlight.withLock { $0.max })")
            #expect(inFlight.withLock { $0.max } >= 2, "the restores ran one by one: the bound is not what limited them")
            #expect(h.metrics.pending["restore"] == 0)
        }
    }
}
