import Foundation
import Logging
@testable import Monitor
import Policy
import Testing
import TestSupport

/// IBM Z device shapes through the whole pipeline on the fake libvirt: the Monitor's index, `/metrics`,
/// `mdevmon list`, the policy's verdicts and restores. vfio-ap applies its attrs in order, so every
/// golden text below keeps them as libvirt's XML has them.
@Suite struct IBMZGoldenTests {
    static let definedInactive = DeviceFlags(active: false, persistent: true, autostart: false)
    static let definedAutostart = DeviceFlags(active: false, persistent: true, autostart: true)

    /// Compares multi-line text exactly and names the first line that differs.
    static func golden(_ actual: String, _ expected: String, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual == expected, "\(what)", sourceLocation: sourceLocation)
        guard actual != expected else { return }
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let line = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, e.count)
        Issue.record("\(what): first difference at line \(line + 1):\n  actual:   \(line < a.count ? String(a[line]) : "<end>")\n  expected: \(line < e.count ? String(e[line]) : "<end>")",
                     sourceLocation: sourceLocation)
    }

    /// Both mdevs defined and inactive, then the vfio-ap one started: the index, `/metrics`, `mdevmon list`
    /// and whether the domain could start, at each step; the AP card and queue stay out of all of it.
    @Test func definedThenStarted() async throws {
        let fake = try IBMZHost.fake(ap: Self.definedInactive, ccw: Self.definedAutostart)
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let monitorLog = LogCapture(), policyLog = LogCapture()
        try await withMonitor(fake, logger: monitorLog.logger(label: "test.monitor")) { h in
            let actions = RecordingDeviceActions(monitor: h.service, fake: fake)
            try await h.withPolicy(config: PolicyConfig(), stateDir: dir.path, bootID: "boot-1", actions: actions,
                                   log: policyLog) { policy in
                await h.waitForFirstSync()
                await policy.waitForFirstEvaluation()

                // The card and the queue come and go like any node device; the index never hears of them.
                for name in [IBMZHost.card, IBMZHost.queue] {
                    for kind in [NodeDeviceEventKind.created, .updated] {
                        #expect(await h.changes(from: .nodeDevice(name: name, kind: kind)) == [], "\(name) \(kind)")
                    }
                }
                fake.removeDevice(named: IBMZHost.queue)
                #expect(await h.changes(from: .nodeDevice(name: IBMZHost.queue, kind: .deleted)) == [])
                try fake.putDevice(xml: try Fixture.text("ap_07_0038.xml"), flags: IBMZHost.present)
                #expect(await h.changes(from: .nodeDevice(name: IBMZHost.queue, kind: .created)) == [])

                // The index.
                let defined = h.snapshot.state
                Self.golden(IBMZHost.describe(defined), Self.definedIndex, "index, both mdevs defined")
                let listed = try IBMZHost.listed(fake)
                #expect(listed.state == defined, "mdevmon list reads what the daemon's index holds")

                // mdevmon list: table, JSON, and --domains.
                let listing = Listing(listed)
                Self.golden(listing.table(parents: true), Self.definedTable, "mdevmon list --parents")
                Self.golden(String(decoding: listing.json(), as: UTF8.self), Self.definedJSON, "mdevmon list --json")
                Self.golden(DomainListing(listed.state).table(), Self.definedDomains, "mdevmon list --domains")

                // Readiness: the domain's mdev is defined but inactive; its parent has room, so starting it would do.
                let blocked = DomainVerdict(autostart: false, problems: [
                    ReferenceProblem(domain: IBMZHost.domain, uuid: IBMZHost.apUUID, reason: .inactive, domainAutostart: false),
                ])
                #expect(policy.metrics.snapshot.verdicts == [IBMZHost.domain: blocked])

                // /metrics.
                let definedLines = IBMZHost.metricLines(defined, policy: policy)
                Self.golden(definedLines.joined(separator: "\n"), Self.definedMetrics, "/metrics, both mdevs defined")

                // `virsh nodedev-start` of the vfio-ap mdev: it becomes active and its parent has one instance fewer.
                let before = try #require(defined.device(named: IBMZHost.apName))
                fake.updateFlags(of: IBMZHost.apName) { $0.active = true }
                try fake.putDevice(xml: try IBMZHost.apMatrix(available: 65535), flags: IBMZHost.present)
                let changes = await h.changes(from: .nodeDevice(name: IBMZHost.apName, kind: .created))
                var after = before
                after.flags.active = true
                #expect(changes == [
                    .deviceChanged(old: before, new: after),
                    .parentChanged(old: try MonitorServiceEventTests.parent("ap_matrix_parent.xml"),
                                   new: try #require(h.snapshot.state.parents["ap_matrix"])),
                ])
                #expect(h.snapshot.state.device(named: IBMZHost.apName)?.definition.attrs == IBMZHost.apAttrs)

                // Readiness: the domain could start now.
                #expect(await eventually { policy.metrics.snapshot.verdicts[IBMZHost.domain]?.startable == true })
                let started = h.snapshot.state
                let relisted = try IBMZHost.listed(fake)
                #expect(relisted.state == started)
                Self.golden(Listing(relisted).table(parents: false), Self.startedTable, "mdevmon list, vfio-ap started")
                Self.golden(DomainListing(started).table(), Self.startedDomains, "mdevmon list --domains, vfio-ap started")

                // /metrics: exactly these series changed.
                let startedLines = IBMZHost.metricLines(started, policy: policy)
                Self.golden(startedLines.filter { !definedLines.contains($0) }.joined(separator: "\n"), Self.startedMetricsAdded,
                            "/metrics series that the start added")
                Self.golden(definedLines.filter { !startedLines.contains($0) }.joined(separator: "\n"), Self.startedMetricsRemoved,
                            "/metrics series that the start removed")
                #expect(actions.started.isEmpty && actions.createdXML.isEmpty, "nothing to restore on a first run")
            }
        }
        // The card and the queue were no problem to anyone: not logged (at info or above), and the Monitor logged nothing
        // at warning or worse; the policy warned of the inactive mdev once and said when it was resolved.
        #expect(IBMZHost.mentionsOfCardOrQueue(monitorLog).isEmpty)
        #expect(IBMZHost.mentionsOfCardOrQueue(policyLog).isEmpty)
        #expect(monitorLog.records(atLeast: .warning).map(\.message) == [])
        #expect(policyLog.records(atLeast: .warning).map(\.message) == [
            "domain QEMUGuest1 references mdev 783e6dbb-ea0e-411f-94e2-717eaad438bf but the mdev is not active",
        ])
        #expect(policyLog.records(.referenceResolved).map(\.message) == [
            "domain QEMUGuest1 reference to mdev 783e6dbb-ea0e-411f-94e2-717eaad438bf is resolved",
        ])
    }

    /// A transient vfio-ap mdev (`virsh nodedev-create`) and a started vfio-ccw one are active; the host
    /// reboots. The policy recreates the first from the state file with its attrs in vfio-ap's order, and
    /// starts the second from its definition; the domain can start again.
    @Test func rebootRecreatesTheVfioAPDeviceWithItsAttrsInOrder() async throws {
        let fake = try IBMZHost.fake(ap: DeviceFlags(active: true, persistent: false, autostart: false),
                                     ccw: DeviceFlags(active: true, persistent: true, autostart: true))
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = StateStore(directory: dir.path)
        var config = PolicyConfig()
        config.restore.recreateTransient = true
        let log = LogCapture()

        // Before the reboot: the daemon writes down what is active.
        try await withMonitor(fake) { h in
            try await h.withPolicy(config: config, stateDir: dir.path, bootID: "boot-1",
                                   actions: RecordingDeviceActions(monitor: h.service, fake: fake), log: log) { _ in
                let expected = PersistedState(bootID: "boot-1", active: [
                    PersistedState.Device(uuid: IBMZHost.apUUID, parent: "ap_matrix", mdevType: "vfio_ap-passthrough",
                                          attrs: IBMZHost.apAttrs, persistent: false),
                    PersistedState.Device(uuid: IBMZHost.ccwUUID, parent: "css_0_0_fffe", mdevType: "vfio_ccw-io",
                                          attrs: [], persistent: true),
                ])
                #expect(await eventually { store.load() == .loaded(expected) })
            }
        }
        Self.golden(try String(contentsOfFile: store.path, encoding: .utf8), Self.stateFile, "state file before the reboot")

        // The reboot: the transient device is gone, the defined one is inactive until someone starts it.
        fake.removeDevice(named: IBMZHost.apName)
        fake.updateFlags(of: IBMZHost.ccwName) { $0.active = false }

        let monitorLog = LogCapture()
        try await withMonitor(fake, logger: monitorLog.logger(label: "test.monitor")) { h in
            let actions = RecordingDeviceActions(monitor: h.service, fake: fake)
            try await h.withPolicy(config: config, stateDir: dir.path, bootID: "boot-2", actions: actions, log: log) { policy in
                #expect(await eventually {
                    h.snapshot.state.devices(uuid: IBMZHost.apUUID).first?.active == true
                        && h.snapshot.state.device(named: IBMZHost.ccwName)?.active == true
                })
                #expect(actions.started == [IBMZHost.ccwName])
                #expect(actions.createdXML.count == 1)
                Self.golden(actions.createdXML.first ?? "", Self.restoreXML, "the XML the policy sent to re-create the vfio-ap mdev")
                let recreated = try #require(h.snapshot.state.devices(uuid: IBMZHost.apUUID).first)
                #expect(recreated.parent == "ap_matrix" && !recreated.persistent)
                #expect(recreated.definition.attrs == IBMZHost.apAttrs)
                #expect(await eventually { policy.metrics.snapshot.verdicts[IBMZHost.domain]?.startable == true })
            }
        }
        // The domain's mdev was being restored (news, not an alarm) until it was back.
        #expect(log.records(.referenceProblem).map { $0.value("reason") } == ["restoring"])
        #expect(log.records(.referenceResolved).map(\.domain) == [IBMZHost.domain])
        #expect(log.records(atLeast: .warning).map(\.message) == [])
        #expect(monitorLog.records(atLeast: .warning).map(\.message) == [])
    }
}

// MARK: golden text

extension IBMZGoldenTests {
    static let definedIndex = """
        parent ap_matrix kind=ap_matrix
          type vfio_ap-passthrough name=VFIO AP Passthrough Device device_api=vfio-ap available=65536
        parent css_0_0_fffe kind=css
          type vfio_ccw-io name=I/O subchannel (Non-QDIO) device_api=vfio-ccw available=1
        device 783e6dbb-ea0e-411f-94e2-717eaad438bf parent=ap_matrix name=mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix
          type=vfio_ap-passthrough parent_addr=matrix iommu_group=0
          active=false persistent=true autostart=false
          attr assign_adapter=5
          attr assign_adapter=6
          attr assign_domain=0xab
          attr assign_control_domain=0xab
          attr assign_domain=4
          attr assign_control_domain=4
          domains=["QEMUGuest1"] in_use_by=[]
        device cc000052-9b13-9b13-9b13-cc23009b1326 parent=css_0_0_fffe name=mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe
          type=vfio_ccw-io parent_addr=0.0.fffe iommu_group=0
          active=false persistent=true autostart=true
          domains=[] in_use_by=[]
        domain QEMUGuest1 uuid=c7a5fdbd-edaf-9455-926a-d65c16db1809 active=false persistent=true autostart=false
          mdevs=["783e6dbb-ea0e-411f-94e2-717eaad438bf"] live=[]

        """

    static let definedTable = """
        UUID                                  PARENT        TYPE                 STATE     PERSISTENCE  AUTOSTART  DOMAINS     IN_USE_BY  DRIFT
        783e6dbb-ea0e-411f-94e2-717eaad438bf  ap_matrix     vfio_ap-passthrough  inactive  persistent   no         QEMUGuest1  -          in_sync
        cc000052-9b13-9b13-9b13-cc23009b1326  css_0_0_fffe  vfio_ccw-io          inactive  persistent   yes        -           -          in_sync

        PARENT        KIND       TYPE                 NAME                        DEVICE_API  AVAILABLE
        ap_matrix     ap_matrix  vfio_ap-passthrough  VFIO AP Passthrough Device  vfio-ap     65536
        css_0_0_fffe  css        vfio_ccw-io          I/O subchannel (Non-QDIO)   vfio-ccw    1

        """

    static let definedJSON = """
        {
          "devices" : [
            {
              "active" : false,
              "attrs" : [
                {
                  "name" : "assign_adapter",
                  "value" : "5"
                },
                {
                  "name" : "assign_adapter",
                  "value" : "6"
                },
                {
                  "name" : "assign_domain",
                  "value" : "0xab"
                },
                {
                  "name" : "assign_control_domain",
                  "value" : "0xab"
                },
                {
                  "name" : "assign_domain",
                  "value" : "4"
                },
                {
                  "name" : "assign_control_domain",
                  "value" : "4"
                }
              ],
              "autostart" : false,
              "domains" : [
                "QEMUGuest1"
              ],
              "drift" : "in_sync",
              "in_use_by" : [

              ],
              "iommu_group" : 0,
              "mdev_type" : "vfio_ap-passthrough",
              "name" : "mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix",
              "parent" : "ap_matrix",
              "parent_address" : "matrix",
              "persistent" : true,
              "uuid" : "783e6dbb-ea0e-411f-94e2-717eaad438bf"
            },
            {
              "active" : false,
              "attrs" : [

              ],
              "autostart" : true,
              "domains" : [

              ],
              "drift" : "in_sync",
              "in_use_by" : [

              ],
              "iommu_group" : 0,
              "mdev_type" : "vfio_ccw-io",
              "name" : "mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe",
              "parent" : "css_0_0_fffe",
              "parent_address" : "0.0.fffe",
              "persistent" : true,
              "uuid" : "cc000052-9b13-9b13-9b13-cc23009b1326"
            }
          ],
          "parents" : [
            {
              "kind" : "ap_matrix",
              "name" : "ap_matrix",
              "types" : [
                {
                  "available_instances" : 65536,
                  "device_api" : "vfio-ap",
                  "id" : "vfio_ap-passthrough",
                  "name" : "VFIO AP Passthrough Device"
                }
              ]
            },
            {
              "kind" : "css",
              "name" : "css_0_0_fffe",
              "types" : [
                {
                  "available_instances" : 1,
                  "device_api" : "vfio-ccw",
                  "id" : "vfio_ccw-io",
                  "name" : "I/O subchannel (Non-QDIO)"
                }
              ]
            }
          ]
        }

        """

    static let definedDomains = """
        DOMAIN      STATE     PERSISTENCE  AUTOSTART  MDEVS                                 IN_USE  STARTABLE  BLOCKERS
        QEMUGuest1  inactive  persistent   no         783e6dbb-ea0e-411f-94e2-717eaad438bf  -       no         783e6dbb-ea0e-411f-94e2-717eaad438bf:inactive

        """

    static let definedMetrics = """
        mdev_device_active{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 0
        mdev_device_active{uuid="cc000052-9b13-9b13-9b13-cc23009b1326",parent="css_0_0_fffe"} 0
        mdev_device_autostart{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 0
        mdev_device_autostart{uuid="cc000052-9b13-9b13-9b13-cc23009b1326",parent="css_0_0_fffe"} 1
        mdev_device_domain_references{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 1
        mdev_device_domain_references{uuid="cc000052-9b13-9b13-9b13-cc23009b1326",parent="css_0_0_fffe"} 0
        mdev_device_info{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix",mdev_type="vfio_ap-passthrough",name="mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix",iommu_group="0"} 1
        mdev_device_info{uuid="cc000052-9b13-9b13-9b13-cc23009b1326",parent="css_0_0_fffe",mdev_type="vfio_ccw-io",name="mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe",iommu_group="0"} 1
        mdev_device_persistent{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 1
        mdev_device_persistent{uuid="cc000052-9b13-9b13-9b13-cc23009b1326",parent="css_0_0_fffe"} 1
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="active"} 0
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="inactive"} 1
        mdev_devices{parent="css_0_0_fffe",mdev_type="vfio_ccw-io",state="active"} 0
        mdev_devices{parent="css_0_0_fffe",mdev_type="vfio_ccw-io",state="inactive"} 1
        mdev_domain_autostart{domain="QEMUGuest1"} 0
        mdev_domain_device_info{domain="QEMUGuest1",uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf"} 1
        mdev_domain_reference_problem{domain="QEMUGuest1",uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",reason="inactive"} 1
        mdev_domain_startable{domain="QEMUGuest1"} 0
        mdev_parent_available_instances{parent="ap_matrix",mdev_type="vfio_ap-passthrough"} 65536
        mdev_parent_available_instances{parent="css_0_0_fffe",mdev_type="vfio_ccw-io"} 1
        mdev_parent_type_info{parent="ap_matrix",mdev_type="vfio_ap-passthrough",name="VFIO AP Passthrough Device",device_api="vfio-ap"} 1
        mdev_parent_type_info{parent="css_0_0_fffe",mdev_type="vfio_ccw-io",name="I/O subchannel (Non-QDIO)",device_api="vfio-ccw"} 1
        """

    static let startedTable = """
        UUID                                  PARENT        TYPE                 STATE     PERSISTENCE  AUTOSTART  DOMAINS     IN_USE_BY  DRIFT
        783e6dbb-ea0e-411f-94e2-717eaad438bf  ap_matrix     vfio_ap-passthrough  active    persistent   no         QEMUGuest1  -          unknown
        cc000052-9b13-9b13-9b13-cc23009b1326  css_0_0_fffe  vfio_ccw-io          inactive  persistent   yes        -           -          in_sync

        """

    static let startedDomains = """
        DOMAIN      STATE     PERSISTENCE  AUTOSTART  MDEVS                                 IN_USE  STARTABLE  BLOCKERS
        QEMUGuest1  inactive  persistent   no         783e6dbb-ea0e-411f-94e2-717eaad438bf  -       yes        -

        """

    static let startedMetricsAdded = """
        mdev_device_active{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 1
        mdev_device_definition_drift{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix",state="in_sync"} 0
        mdev_device_definition_drift{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix",state="drifted"} 0
        mdev_device_definition_drift{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix",state="unknown"} 1
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="active"} 1
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="inactive"} 0
        mdev_domain_startable{domain="QEMUGuest1"} 1
        mdev_parent_available_instances{parent="ap_matrix",mdev_type="vfio_ap-passthrough"} 65535
        """

    static let startedMetricsRemoved = """
        mdev_device_active{uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",parent="ap_matrix"} 0
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="active"} 0
        mdev_devices{parent="ap_matrix",mdev_type="vfio_ap-passthrough",state="inactive"} 1
        mdev_domain_reference_problem{domain="QEMUGuest1",uuid="783e6dbb-ea0e-411f-94e2-717eaad438bf",reason="inactive"} 1
        mdev_domain_startable{domain="QEMUGuest1"} 0
        mdev_parent_available_instances{parent="ap_matrix",mdev_type="vfio_ap-passthrough"} 65536
        """

    static let stateFile = """
        {
          "active" : [
            {
              "attrs" : [
                {
                  "name" : "assign_adapter",
                  "value" : "5"
                },
                {
                  "name" : "assign_adapter",
                  "value" : "6"
                },
                {
                  "name" : "assign_domain",
                  "value" : "0xab"
                },
                {
                  "name" : "assign_control_domain",
                  "value" : "0xab"
                },
                {
                  "name" : "assign_domain",
                  "value" : "4"
                },
                {
                  "name" : "assign_control_domain",
                  "value" : "4"
                }
              ],
              "mdev_type" : "vfio_ap-passthrough",
              "parent" : "ap_matrix",
              "persistent" : false,
              "uuid" : "783e6dbb-ea0e-411f-94e2-717eaad438bf"
            },
            {
              "attrs" : [

              ],
              "mdev_type" : "vfio_ccw-io",
              "parent" : "css_0_0_fffe",
              "persistent" : true,
              "uuid" : "cc000052-9b13-9b13-9b13-cc23009b1326"
            }
          ],
          "boot_id" : "boot-1",
          "pending" : [

          ],
          "version" : 1
        }
        """

    static let restoreXML = """
        <device>
          <parent>ap_matrix</parent>
          <capability type='mdev'>
            <type id='vfio_ap-passthrough'/>
            <uuid>783e6dbb-ea0e-411f-94e2-717eaad438bf</uuid>
            <attr name='assign_adapter' value='5'/>
            <attr name='assign_adapter' value='6'/>
            <attr name='assign_domain' value='0xab'/>
            <attr name='assign_control_domain' value='0xab'/>
            <attr name='assign_domain' value='4'/>
            <attr name='assign_control_domain' value='4'/>
          </capability>
        </device>

        """
}
