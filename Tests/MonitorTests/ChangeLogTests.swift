import Testing
@testable import Monitor

/// `IndexChange.logEntry`: which journal event (and so which MESSAGE_ID) each transition is told as.
@Suite struct ChangeLogTests {
    struct Transition: Sendable, CustomTestStringConvertible {
        var label: String
        var change: IndexChange
        var event: MessageID
        /// The word after the UUID in the message.
        var word: String
        var testDescription: String { label }
    }

    private static func device(active: Bool = false, persistent: Bool = true, autostart: Bool = false,
                               domains: [String] = []) -> MdevDevice {
        Sample.device(Sample.uuidA, active: active, persistent: persistent, autostart: autostart, domains: domains)
    }

    static let transitions: [Transition] = [
        Transition(label: "added persistent", change: .deviceAdded(device()),
                   event: .deviceDefined, word: "defined"),
        Transition(label: "added transient", change: .deviceAdded(device(active: true, persistent: false)),
                   event: .deviceCreated, word: "created"),
        Transition(label: "inactive → active",
                   change: .deviceChanged(old: device(), new: device(active: true)),
                   event: .deviceCreated, word: "started"),
        Transition(label: "active → inactive",
                   change: .deviceChanged(old: device(active: true), new: device()),
                   event: .deviceDeleted, word: "stopped"),
        Transition(label: "transient → persistent",
                   change: .deviceChanged(old: device(active: true, persistent: false), new: device(active: true)),
                   event: .deviceDefined, word: "defined"),
        Transition(label: "persistent → transient",
                   change: .deviceChanged(old: device(active: true), new: device(active: true, persistent: false)),
                   event: .deviceUndefined, word: "undefined"),
        Transition(label: "autostart flip",
                   change: .deviceChanged(old: device(), new: device(autostart: true)),
                   event: .deviceUpdated, word: "updated"),
        Transition(label: "references changed",
                   change: .deviceChanged(old: device(), new: device(domains: ["vm1", "vm2"])),
                   event: .domainReferencesChanged, word: "now referenced by [vm1, vm2]"),
        Transition(label: "removed persistent", change: .deviceRemoved(device()),
                   event: .deviceUndefined, word: "undefined"),
        Transition(label: "removed transient", change: .deviceRemoved(device(active: true, persistent: false)),
                   event: .deviceDeleted, word: "deleted"),
    ]

    @Test(arguments: transitions)
    func deviceTransition(_ t: Transition) throws {
        let entry = try #require(t.change.logEntry)
        #expect(entry.event == t.event)
        #expect(entry.level == .info)
        #expect(entry.message.hasPrefix("mdev \(Sample.uuidA) \(t.word) on \(Sample.gpu0)"))
        #expect(entry.metadata[LogKey.mdevUUID] == Sample.uuidA)
        #expect(entry.metadata[LogKey.mdevParent] == Sample.gpu0)
        #expect(entry.metadata[LogKey.mdevType] == "i915-GVTg_V5_4")
        #expect(entry.metadata[LogKey.mdevName] == Sample.name(Sample.uuidA, parent: Sample.gpu0))
    }

    @Test func metadataKeysAreTheDottedOnes() {
        #expect(LogKey.mdevUUID == "mdev.uuid")
        #expect(LogKey.mdevParent == "mdev.parent")
        #expect(LogKey.mdevType == "mdev.type")
    }

    @Test func addedMessageCarriesTheStateWords() throws {
        let entry = try #require(IndexChange.deviceAdded(Self.device(active: true, autostart: true)).logEntry)
        #expect(entry.message == "mdev \(Sample.uuidA) defined on \(Sample.gpu0) (active, persistent, autostart)")
    }

    @Test func startingWinsOverOtherDifferences() throws {
        let change = IndexChange.deviceChanged(old: Self.device(), new: Self.device(active: true, autostart: true))
        #expect(try #require(change.logEntry).event == .deviceCreated)
    }

    @Test func domainsWithMdevsAreLoggedWithTheirName() throws {
        let vm = Sample.domain("vm1", uuids: [Sample.uuidA, Sample.uuidB])
        for change in [IndexChange.domainAdded(vm), .domainChanged(old: Sample.domain("vm1", uuids: []), new: vm),
                       .domainRemoved(vm)] {
            let entry = try #require(change.logEntry)
            #expect(entry.event == .domainReferencesChanged)
            #expect(entry.metadata == [LogKey.domainName: "vm1"])
            #expect(entry.message.contains("[\(Sample.uuidA), \(Sample.uuidB)]"))
        }
    }

    /// A domain that starts or stops with the same references is a lifecycle change, told under its own
    /// ID: alerting on "references changed" must not fire on every VM start.
    @Test func aDomainLifecycleChangeIsNotAReferenceChange() throws {
        var off = Sample.domain("vm1", uuids: [Sample.uuidA])
        off.active = false
        var running = off
        running.active = true
        let entry = try #require(IndexChange.domainChanged(old: off, new: running).logEntry)
        #expect(entry.event == .domainStateChanged)
        #expect(entry.message == "domain vm1 is now running, persistent, manual (references mdevs [\(Sample.uuidA)])")
        // A hot-plug changes only the live mdevs: the devices' own entries tell it.
        var plugged = running
        plugged.liveMdevUUIDs = [Sample.uuidB]
        #expect(IndexChange.domainChanged(old: running, new: plugged).logEntry == nil)
        // Losing its last reference is a reference change.
        var none = off
        none.mdevUUIDs = []
        #expect(try #require(IndexChange.domainChanged(old: off, new: none).logEntry).event == .domainReferencesChanged)
    }

    @Test func quietChangesHaveNoEntry() {
        let plain = Sample.domain("vm1", uuids: [])
        #expect(IndexChange.domainAdded(plain).logEntry == nil)
        #expect(IndexChange.domainRemoved(plain).logEntry == nil)
        #expect(IndexChange.parentAdded(Sample.parentDevice()).logEntry == nil)
        #expect(IndexChange.parentChanged(old: Sample.parentDevice(available: 2), new: Sample.parentDevice(available: 1)).logEntry == nil)
        #expect(IndexChange.parentRemoved(Sample.parentDevice()).logEntry == nil)
    }

    @Test func connectionChanges() throws {
        let lost = try #require(IndexChange.connection(.disconnected(reason: "eof")).logEntry)
        #expect(lost.event == .connectionLost)
        #expect(lost.level == .warning)
        #expect(lost.message.contains("eof"))
        let synced = try #require(IndexChange.connection(.synced).logEntry)
        #expect(synced.event == .connectionRestored)
        #expect(synced.level == .notice)
    }
}
