import Foundation
import Logging
import Monitor
import Policy
import TestSupport
import Testing

/// The restore policy end to end: a real `DeviceIndex`, a temp state file, fake actions.
@Suite struct PolicyServiceRestoreTests {
    let owned = Sample.uuid()
    let excluded = Sample.uuid()
    let alreadyActive = Sample.uuid()

    /// The state file of the previous boot: all three were active.
    var previous: PersistedState {
        PersistedState(bootID: "previous-boot", active: [Sample.saved(owned), Sample.saved(excluded), Sample.saved(alreadyActive)])
    }

    /// This boot after the first sync: the two restorable ones came up inactive.
    var initial: IndexState {
        .with([Sample.device(owned), Sample.device(excluded), Sample.device(alreadyActive, active: true)])
    }

    func config(dryRun: Bool = false) -> PolicyConfig {
        fastConfig {
            $0.ownership.excludeUUIDs = [excluded.uppercased()]
            $0.dryRun = dryRun
        }
    }

    @Test func retriesWithCappedBackoffThenGivesUpOnOwnedDevicesOnly() async throws {
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(), failTimes: .max) { h in
            #expect(await eventually { !h.actions.calls.isEmpty })
            #expect(h.metrics.pending["restore"] == 1, "the device is pending while retried")
            // While it is retried, the state file keeps it as pending (so a crash does not forget it).
            #expect(await eventually { h.saved?.pending.map(\.uuid) == [owned] })
            #expect(h.saved?.active.map(\.uuid) == [alreadyActive])
            #expect(h.saved?.bootID == PolicyHarness.bootID)

            #expect(await eventually { h.count("gave_up") == 1 }, "never gave up")
            let calls = h.actions.calls
            #expect(Set(calls.map(\.argument)) == [Sample.name(owned)], "only the owned, inactive device is started")
            #expect(calls.allSatisfy { $0.action == "start" })
            #expect(calls.count >= 2 && calls.count <= 7, "20ms doubling to 80ms within 400ms allows 2…7 attempts, got \(calls.count)")
            #expect(h.count("failure") == calls.count)
            #expect(h.count("success") == 0)
            #expect(h.metrics.pending["restore"] == 0)

            // Backoff: each wait is at least the scheduled delay, doubling and capped.
            let schedule: [Duration] = [.milliseconds(20), .milliseconds(40), .milliseconds(80), .milliseconds(80), .milliseconds(80), .milliseconds(80)]
            for (i, (a, b)) in zip(calls, calls.dropFirst()).enumerated() {
                #expect(b.time - a.time >= schedule[i], "attempt \(i + 2) came too early")
            }
            let retries = h.log.records(.restoreFailed)
            #expect(retries.count == calls.count - 1)
            #expect(retries.map { $0.message.components(separatedBy: "retrying in ").last?.components(separatedBy: ":").first }
                == schedule.prefix(retries.count).map { "\($0)" })
            #expect(retries.allSatisfy { $0.level == .warning && $0.uuid == owned })

            let attempts = h.log.records(.restoreAttempted)
            #expect(attempts.count == calls.count)
            #expect(attempts.allSatisfy { $0.level == .notice && $0.uuid == owned && $0.metadata[LogKey.mdevParent] == "\(Sample.parent)" })
            #expect(attempts.first?.message.contains("attempt 1 (was active before the reboot)") == true)

            let gaveUp = try #require(h.log.records(.restoreGaveUp).first)
            #expect(h.log.records(.restoreGaveUp).count == 1)
            #expect(gaveUp.level == .error)
            #expect(gaveUp.uuid == owned)
            #expect(gaveUp.message.contains("after \(calls.count) attempts"))
            #expect(gaveUp.message.contains("Unable to start mediated device (fake)"))

            #expect(!h.log.records.contains { $0.uuid == excluded }, "the excluded device is never mentioned")
            #expect(h.log.records.contains { $0.message.contains("boot id previous-boot → boot id \(PolicyHarness.bootID)): 1 mdevs to restore") })
        }
    }

    @Test func succeedsAfterFailures() async throws {
        // A long deadline: this test is about succeeding, and a loaded CI machine must not make it give up.
        var cfg = config()
        cfg.restore.deadline = .seconds(30)
        try await PolicyHarness.run(initial: initial, previous: previous, config: cfg, failTimes: 2) { h in
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.actions.startCalls == Array(repeating: Sample.name(owned), count: 3))
            #expect(h.count("failure") == 2)
            #expect(h.count("gave_up") == 0)
            #expect(h.log.records(.restoreFailed).count == 2)
            let done = h.log.records(.restoreSucceeded)
            #expect(done.count == 1 && done.first?.uuid == owned && done.first?.level == .notice)
            #expect(await eventually { h.metrics.pending["restore"] == 0 })
        }
    }

    @Test func dryRunDecidesButNeverActs() async throws {
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(dryRun: true), failTimes: .max) { h in
            #expect(await eventually { h.count("dry_run") == 1 })
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty)
            #expect(h.count("failure") == 0 && h.count("success") == 0 && h.count("gave_up") == 0)
            let would = h.log.records(.restoreAttempted)
            #expect(would.count == 1)
            #expect(would.first?.uuid == owned)
            #expect(would.first?.message == "dry run: would start mdev \(owned) on \(Sample.parent) (was active before the reboot); kept in the plan")
            #expect(h.log.records(.restoreFailed).isEmpty && h.log.records(.restoreSucceeded).isEmpty)
        }
    }

    /// The dry run's plan is not used up: the device stays pending (metrics and state file), and real mode
    /// on the same boot, by reload, acts on exactly that device.
    @Test func dryRunKeepsThePlanForRealMode() async throws {
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(dryRun: true), failTimes: .max,
                                    writable: true) { h in
            #expect(await eventually { h.count("dry_run") == 1 })
            #expect(await eventually { h.saved?.bootID == PolicyHarness.bootID && h.saved?.pending.map(\.uuid) == [owned] },
                    "the dry run's device left the state file's plan")
            #expect(h.metrics.pending["restore"] == 1)
            #expect(h.actions.calls.isEmpty)
            h.service.update(config: config(dryRun: false))
            #expect(await eventually { !h.actions.startCalls.isEmpty }, "real mode did not act")
            #expect(Set(h.actions.startCalls) == [Sample.name(owned)])
            #expect(h.count("dry_run") == 1, "the dry run was said once")
        }
    }

    /// Real mode reloaded over the read-only connection a dry run opened: nothing is attempted, the plan
    /// stays for the restart.
    @Test func realModeOverAReadOnlyConnectionWaitsForTheRestart() async throws {
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(dryRun: true), failTimes: .max) { h in
            #expect(await eventually { h.count("dry_run") == 1 })
            h.service.update(config: config(dryRun: false))
            #expect(await eventually { h.log.records.contains { $0.uuid == owned && $0.message.contains("read-only until mdevmon restarts") } })
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty)
            #expect(h.metrics.pending["restore"] == 1)
            // The marker domain's reference problem is the one warning.
            #expect(h.log.records(atLeast: .warning).allSatisfy { $0.value(LogKey.domainName)?.hasPrefix("marker-") == true })
        }
    }

    @Test func deviceThatCameUpMeanwhileIsSkipped() async throws {
        let owned = owned
        // The parent's driver registers its types and mdevctl's udev rule starts the device at once: it is
        // active by the time the restore looks.
        let initial = IndexState.with([Sample.device(owned)], parents: [])
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(), failTimes: .max) { h in
            #expect(await eventually { h.log.records.contains { $0.uuid == owned && $0.message.contains("waiting for parent") } })
            await h.index.mutate {
                $0.upsertParent(Sample.parentDevice())
                    + $0.upsertDevice(Sample.definition(owned), flags: DeviceFlags(active: true, persistent: true, autostart: false))
            }
            #expect(await eventually { h.count("skipped") == 1 })
            #expect(h.actions.calls.isEmpty)
            #expect(h.count("failure") == 0)
            #expect(h.log.records(.restoreAttempted).isEmpty)
            #expect(h.log.records.contains { $0.uuid == owned && $0.message.contains("already active") })
        }
    }

    @Test func failureBecauseSomeoneElseWonTheRaceIsNotAFailure() async throws {
        let owned = owned
        let hooks: (DeviceIndex) -> FakeDeviceActions.Hooks = { index in
            FakeDeviceActions.Hooks(beforeAction: { _ in
                await index.mutate { $0.upsertDevice(Sample.definition(owned), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            })
        }
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(), failTimes: .max, hooks: hooks) { h in
            #expect(await eventually { h.count("skipped") == 1 })
            #expect(h.actions.startCalls == [Sample.name(owned)])
            #expect(h.count("failure") == 0 && h.count("gave_up") == 0)
            #expect(h.log.records(.restoreFailed).isEmpty)
        }
    }

    @Test func waitsForTheParentToAppear() async throws {
        let initial = IndexState.with([Sample.device(owned)], parents: [])
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(owned)])
        // Whether the parent was in the index at each start: never starting without it is the point.
        let parentAtStart = Capture()
        let hooks: (DeviceIndex) -> FakeDeviceActions.Hooks = { index in
            FakeDeviceActions.Hooks(beforeAction: { _ in
                parentAtStart.append(index.snapshot.state.parents[Sample.parent] == nil ? "absent" : "present")
            })
        }
        try await PolicyHarness.run(initial: initial, previous: previous, config: config(), hooks: hooks) { h in
            #expect(await eventually { h.log.records.contains { $0.message.contains("waiting for parent \(Sample.parent) to offer type \(Sample.type)") } })
            #expect(h.actions.checkedParents.isEmpty, "the index answers: libvirt is not asked")
            #expect(h.metrics.pending["restore"] == 1)
            #expect(h.metrics.waiting.values.map(\.reason) == [.type])

            // Another parent appearing does not help: once the policy has consumed that change (and a
            // later one), the restore is still pending and has not acted.
            await h.index.mutate { $0.upsertParent(Sample.parentDevice(Sample.otherParent)) }
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty, "started before its parent existed")
            #expect(h.metrics.pending["restore"] == 1)

            await h.index.mutate { $0.upsertParent(Sample.parentDevice()) }
            #expect(await eventually { h.actions.startCalls == [Sample.name(owned)] }, "not started after parentAdded")
            #expect(await eventually { h.count("success") == 1 })
            #expect(await eventually { h.metrics.pending["restore"] == 0 })
            #expect(parentAtStart.all == ["present"])
        }
    }

    @Test func sameBootResumesPendingRestoresOnly() async throws {
        // A previous run of this boot was killed while restoring `owned`.
        let killed = PersistedState(bootID: PolicyHarness.bootID, active: [Sample.saved(alreadyActive)],
                                    pending: [Sample.saved(owned), Sample.saved(excluded)])
        try await PolicyHarness.run(initial: initial, previous: killed, config: config(), failTimes: 0) { h in
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.actions.startCalls == [Sample.name(owned)], "only the owned pending device is resumed")
            #expect(h.log.records.contains { $0.message.contains("resuming 1 restores") })
            #expect(await eventually { h.saved?.pending == [] }, "a finished restore leaves the pending list")
        }
    }

    // The policy plans, publishes the pending count, and only then writes the state file and starts
    // restores. So once the new state file is seen, `pending` is the number of restores planned; a
    // restore that ran and already finished would have counted its outcome before leaving `pending`.
    // Reading `pending` first and the counters second therefore sees any restore, running or done.

    @Test func sameBootRestoresNothing() async throws {
        let sameBoot = PersistedState(bootID: PolicyHarness.bootID, active: previous.active)
        try await PolicyHarness.run(initial: initial, previous: sameBoot, config: config(), failTimes: .max) { h in
            #expect(await eventually { h.saved?.active.map(\.uuid) == [alreadyActive] }, "state file not rewritten after the first sync")
            #expect(h.metrics.pending["restore"] == 0, "a restore was planned")
            #expect(h.metrics.actions.values.allSatisfy { $0 == 0 }, "no action counted")
            #expect(h.actions.calls.isEmpty)
            #expect(h.actions.checkedParents.isEmpty)
            #expect(!h.log.records.contains { $0.message.contains("rebooted") })
        }
    }

    @Test func restoreDisabledRestoresNothing() async throws {
        let cfg = fastConfig { $0.restore.enabled = false }
        try await PolicyHarness.run(initial: initial, previous: previous, config: cfg, failTimes: .max) { h in
            #expect(await eventually { h.saved?.bootID == PolicyHarness.bootID })
            #expect(h.metrics.pending["restore"] == 0, "a restore was planned")
            #expect(h.metrics.actions.values.allSatisfy { $0 == 0 }, "no action counted")
            #expect(h.actions.calls.isEmpty)
            #expect(h.actions.checkedParents.isEmpty)
        }
    }

    @Test func noStateFileIsAFirstRun() async throws {
        try await PolicyHarness.run(initial: initial, previous: nil, config: config(), failTimes: .max) { h in
            #expect(await eventually { h.saved?.active.map(\.uuid) == [alreadyActive] })
            #expect(h.log.records.contains { $0.level == .info && $0.message.contains("first run, nothing to restore") })
            #expect(h.actions.calls.isEmpty)
        }
    }

    @Test func autostartDeviceStillInactiveAfterGraceIsStarted() async throws {
        let auto = Sample.uuid()
        let initial = IndexState.with([Sample.device(auto, autostart: true)])
        let cfg = fastConfig { $0.restore.autostartGracePeriod = .milliseconds(150) }
        let started = ContinuousClock.now
        try await PolicyHarness.run(initial: initial, previous: PersistedState(bootID: "previous-boot", active: []), config: cfg) { h in
            #expect(await eventually { h.count("success") == 1 })
            let call = try #require(h.actions.calls.first)
            #expect(call.argument == Sample.name(auto))
            #expect(call.time - started >= .milliseconds(150), "started before the grace period ended")
            let done = try #require(h.log.records(.restoreSucceeded).first)
            #expect(done.message.contains("autostart had failed; repaired"))
            #expect(h.log.records(.restoreAttempted).first?.message.contains("(autostart did not start it)") == true)
        }
    }

    @Test func autostartDeviceThatComesUpDuringGraceIsLeftAlone() async throws {
        let auto = Sample.uuid()
        let initial = IndexState.with([Sample.device(auto, autostart: true)])
        let cfg = fastConfig { $0.restore.autostartGracePeriod = .milliseconds(300) }
        try await PolicyHarness.run(initial: initial, previous: PersistedState(bootID: "previous-boot", active: []), config: cfg) { h in
            #expect(await eventually { h.log.records.contains { $0.uuid == auto && $0.message.contains("giving autostart") } })
            await h.index.mutate {
                $0.upsertDevice(Sample.definition(auto), flags: DeviceFlags(active: true, persistent: true, autostart: true))
            }
            #expect(await eventually { h.count("skipped") == 1 })
            #expect(h.actions.calls.isEmpty)
        }
    }

    @Test func transientDeviceIsRecreatedFromItsDefinition() async throws {
        let transient = Sample.uuid()
        let attrs = [MdevAttr(name: "b", value: "2"), MdevAttr(name: "a", value: "1")]
        let saved = Sample.saved(transient, persistent: false, attrs: attrs)
        let cfg = fastConfig { $0.restore.recreateTransient = true }
        try await PolicyHarness.run(initial: .with([], parents: [Sample.parent]),
                                    previous: PersistedState(bootID: "previous-boot", active: [saved]), config: cfg) { h in
            #expect(await eventually { h.count("success", action: "create") == 1 })
            #expect(h.actions.calls.map(\.action) == ["create"])
            #expect(h.actions.calls.first?.argument == RestorePlanner.createXML(saved))
        }
    }

    @Test func transientDeviceIsNotRecreatedByDefault() async throws {
        let transient = Sample.uuid()
        let saved = Sample.saved(transient, persistent: false)
        try await PolicyHarness.run(initial: .with([], parents: [Sample.parent]),
                                    previous: PersistedState(bootID: "previous-boot", active: [saved]), config: fastConfig()) { h in
            #expect(await eventually {
                h.log.records.contains { $0.uuid == transient && $0.level == .notice && $0.message.contains("recreate_transient is off") }
            })
            // Planned (and skipped) before the state file of this boot is written; see above.
            #expect(await eventually { h.saved?.bootID == PolicyHarness.bootID })
            #expect(h.metrics.pending["restore"] == 0, "a restore was planned")
            #expect(h.metrics.actions.values.allSatisfy { $0 == 0 }, "no action counted")
            #expect(h.actions.calls.isEmpty)
        }
    }

    /// A device no longer owned stops being restored but stays in the plan; owned again, it is restored.
    @Test func reloadedOwnershipHoldsARunningRestoreInThePlan() async throws {
        var slow = config()
        slow.restore.deadline = .seconds(30)
        try await PolicyHarness.run(initial: initial, previous: previous, config: slow, failTimes: .max) { h in
            #expect(await eventually { h.actions.calls.count >= 2 })
            var cfg = h.service.currentConfig
            cfg.ownership.excludeUUIDs = [owned]
            h.service.update(config: cfg)
            #expect(await eventually { h.log.records.contains { $0.uuid == owned && $0.message.contains("no longer owned") } })
            let calls = h.actions.calls
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls == calls, "an attempt after the device was no longer owned")
            #expect(h.count("failure") == calls.count, "every attempt made was counted, none after")
            #expect(h.count("gave_up") == 0 && h.count("success") == 0)
            #expect(h.log.records(.restoreAttempted).count == calls.count)
            #expect(h.metrics.pending["restore"] == 1, "the device left the plan")
            #expect(await eventually { h.saved?.pending.map(\.uuid) == [owned] })

            h.service.update(config: slow)
            #expect(await eventually { h.actions.calls.count > calls.count }, "owned again, it was not restored")
            #expect(h.log.records.filter { $0.message.contains("no longer owned") }.count == 1)
        }
    }
}
