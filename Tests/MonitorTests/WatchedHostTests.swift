import Foundation
import Monitor
import Testing

/// How a watched host's boot is told and compared: the kernel's id locally, an estimate from CPU time remotely.
@Suite struct WatchedHostTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func theStateFileFormRoundTrips() throws {
        for boot in [HostBoot.kernel(id: "0f5c6d0e-2c1b-4a57-9a51-2b6f0c1d2e3f"), .estimated(bootTime: 1_799_990_000)] {
            #expect(HostBoot(persisted: boot.persisted) == boot)
        }
        // What every earlier mdevmon wrote is a kernel boot id.
        #expect(HostBoot(persisted: "0f5c6d0e-2c1b-4a57-9a51-2b6f0c1d2e3f") == .kernel(id: "0f5c6d0e-2c1b-4a57-9a51-2b6f0c1d2e3f"))
        #expect(HostBoot(persisted: HostBoot.unknown) == nil)
        #expect(HostBoot(persisted: "") == nil)
        // A damaged estimate is read as an id, which no estimate equals: not comparable, so no reboot is assumed.
        #expect(HostBoot(persisted: "estimated-boot-time:soon")?.isLater(than: .estimated(bootTime: 1)) == nil)
    }

    @Test func anEstimateIsNowMinusCPUTimeOverCPUs() {
        // Two CPUs, 1,000 s each since boot: up for 1,000 s.
        #expect(HostBoot.estimate(cpuTimeNanoseconds: 2_000 * 1_000_000_000, cpus: 2, now: now) == .estimated(bootTime: 1_799_999_000))
        #expect(HostBoot.estimate(cpuTimeNanoseconds: 0, cpus: 2, now: now) == nil)
        #expect(HostBoot.estimate(cpuTimeNanoseconds: 5, cpus: 0, now: now) == nil)
    }

    @Test func estimatesWithinTheToleranceAreOneBoot() {
        // Booted a day ago: a minute plus 5 % of a day (72 min) of counters missed is still that boot.
        let booted = Int(now.timeIntervalSince1970) - 86_400
        let tolerance = HostBoot.tolerance(since: booted, now: now)
        #expect(tolerance == 60 + 4_320)
        let first = HostBoot.estimated(bootTime: booted)
        #expect(HostBoot.estimated(bootTime: booted + tolerance).isLater(than: first, now: now) == false)
        #expect(HostBoot.estimated(bootTime: booted - 30).isLater(than: first, now: now) == false)
        // Rebooted two minutes ago.
        #expect(HostBoot.estimated(bootTime: Int(now.timeIntervalSince1970) - 120).isLater(than: first, now: now) == true)
        // Just booted, seen again a few seconds later: the minute covers the rounding.
        let fresh = HostBoot.estimated(bootTime: Int(now.timeIntervalSince1970) - 30)
        #expect(HostBoot.estimated(bootTime: Int(now.timeIntervalSince1970) - 28).isLater(than: fresh, now: now) == false)
    }

    @Test func kernelIdsCompareByEqualityAndKindsDoNotCompare() {
        let a = HostBoot.kernel(id: "a"), b = HostBoot.kernel(id: "b")
        #expect(b.isLater(than: a) == true)
        #expect(a.isLater(than: a) == false)
        #expect(HostBoot.estimated(bootTime: 5).isLater(than: a) == nil)
        #expect(a.isLater(than: .estimated(bootTime: 5)) == nil)
    }
}
