import Exporter
import Foundation
import Logging
@testable import Monitor
import Policy
import PolicyExporter
import Synchronization
import TestSupport

/// An IBM Z host in the fake libvirt, built from libvirt's own test XML (see Fixtures/README.md): the AP
/// matrix and one CSS subchannel (the parents), a crypto card and one of its queues (neither parents nor
/// mdevs), the vfio-ap mdev with its six ordered attrs, the vfio-ccw mdev, and a domain using the vfio-ap one.
enum IBMZHost {
    static let apUUID = "783e6dbb-ea0e-411f-94e2-717eaad438bf"
    static let apName = "mdev_783e6dbb_ea0e_411f_94e2_717eaad438bf_matrix"
    static let ccwUUID = "cc000052-9b13-9b13-9b13-cc23009b1326"
    static let ccwName = "mdev_cc000052_9b13_9b13_9b13_cc23009b1326_0_0_fffe"
    static let domain = "QEMUGuest1"
    /// The AP card and queue node devices: capability `ap_card` and `ap_queue`, no `mdev_types`.
    static let card = "ap_card07"
    static let queue = "ap_07_0038"

    /// vfio-ap applies them in this order, so nothing may sort or group them.
    static let apAttrs = [
        MdevAttr(name: "assign_adapter", value: "5"),
        MdevAttr(name: "assign_adapter", value: "6"),
        MdevAttr(name: "assign_domain", value: "0xab"),
        MdevAttr(name: "assign_control_domain", value: "0xab"),
        MdevAttr(name: "assign_domain", value: "4"),
        MdevAttr(name: "assign_control_domain", value: "4"),
    ]

    /// How libvirt reports a parent or another plain node device: it exists while its driver is bound.
    static let present = DeviceFlags(active: true, persistent: false, autostart: false)

    /// The host with both mdevs in the given states.
    static func fake(ap: DeviceFlags, ccw: DeviceFlags) throws -> FakeLibvirt {
        let fake = FakeLibvirt()
        for file in ["ap_matrix_parent.xml", "css_parent.xml", "ap_card07.xml", "ap_07_0038.xml"] {
            try fake.putDevice(xml: try Fixture.text(file), flags: present)
        }
        try fake.putDevice(xml: try Fixture.text("mdev_ap.xml"), flags: ap)
        try fake.putDevice(xml: try Fixture.text("mdev_ccw.xml"), flags: ccw)
        fake.putDomain(DomainRecord(name: domain, inactiveXML: try Fixture.text("domain_vfio_ap.xml"), active: false,
                                    persistent: true, autostart: false))
        return fake
    }

    /// The AP matrix with `available` vfio-ap instances left (the fixture says 65536).
    static func apMatrix(available: Int) throws -> String {
        try Fixture.text("ap_matrix_parent.xml")
            .replacing("<availableInstances>65536</availableInstances>", with: "<availableInstances>\(available)</availableInstances>")
    }

    /// What `mdevmon list` prints from: one full sync, as `ListCommand` reads it.
    static func listed(_ fake: FakeLibvirt) throws -> IndexSnapshot {
        let result = try fake.freshSync()
        precondition(result.problems.isEmpty, "the list command would warn: \(result.problems)")
        var status = MonitorStatus(uri: fake.uri)
        status.connected = true
        status.synced = true
        return IndexSnapshot(state: result.state, status: status)
    }

    /// The lines of one scrape that name a device, a parent or a domain (every `uuid`, `parent` or
    /// `domain` label): the exporter's index families and the policy's domain families, as the daemon
    /// registers them. The host-wide series (build, events, sync time, policy counters) are left out.
    static func metricLines(_ state: IndexState, policy: PolicyService) -> [String] {
        var status = MonitorStatus(uri: "qemu:///system")
        status.connected = true
        status.synced = true
        let text = String(decoding: MetricsRenderer.render(
            snapshot: IndexSnapshot(state: state, status: status),
            build: BuildInfo(version: "test", revision: "test", swiftVersion: "6"), process: nil, previousScrape: nil,
            contributors: [PolicyExport(metrics: policy.metrics)]), as: UTF8.self)
        return text.split(separator: "\n").map(String.init).filter { line in
            !line.hasPrefix("#") && ["{uuid=", "{parent=", "{domain="].contains { line.contains($0) }
        }
    }

    /// The index as text: parents with their types and capacity, devices with their flags and attrs in
    /// order, domains with the mdevs they reference. Every collection in a fixed order.
    static func describe(_ state: IndexState) -> String {
        var out = ""
        for parent in state.parents.values.sorted(by: { $0.name < $1.name }) {
            out += "parent \(parent.name) kind=\(parent.kind)\n"
            for type in parent.types {
                out += "  type \(type.id) name=\(type.name ?? "-") device_api=\(type.deviceAPI) available=\(type.availableInstances)\n"
            }
        }
        for device in state.devices.values.sorted(by: { $0.key < $1.key }) {
            let d = device.definition
            out += "device \(d.uuid) parent=\(d.parent) name=\(d.name)\n"
            out += "  type=\(d.mdevType) parent_addr=\(d.parentAddress ?? "-") iommu_group=\(d.iommuGroup.map { String($0) } ?? "-")\n"
            out += "  active=\(device.active) persistent=\(device.persistent) autostart=\(device.autostart)\n"
            for attr in d.attrs { out += "  attr \(attr.name)=\(attr.value)\n" }
            out += "  domains=\(device.domains) in_use_by=\(device.inUseBy)\n"
        }
        for domain in state.domains.values.sorted(by: { $0.name < $1.name }) {
            out += "domain \(domain.name) uuid=\(domain.uuid) active=\(domain.active) persistent=\(domain.persistent) autostart=\(domain.autostart)\n"
            out += "  mdevs=\(domain.mdevUUIDs) live=\(domain.liveMdevUUIDs)\n"
        }
        return out
    }

    /// Every record in `logs` that names the AP card or queue, in its message or its metadata.
    static func mentionsOfCardOrQueue(_ logs: LogCapture) -> [LogRecord] {
        // At the default level (info): debug's per-event timings name every object.
        logs.records(atLeast: .info).filter { record in
            let text = record.message + " " + record.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return text.contains(card) || text.contains(queue)
        }
    }
}

/// The daemon's `MonitorDeviceActions` on the fake, recording what the policy asks libvirt to do and, once
/// libvirt did it, raising the node-device event libvirt raises (the fake raises none by itself).
final class RecordingDeviceActions: DeviceActions {
    private let inner: MonitorDeviceActions
    private let fake: FakeLibvirt
    private let recorded = Mutex<(started: [String], created: [String])>(([], []))

    init(monitor: MonitorService, fake: FakeLibvirt) {
        inner = MonitorDeviceActions(monitor: monitor)
        self.fake = fake
    }

    /// Names of the defined devices the policy started, in call order.
    var started: [String] { recorded.withLock { $0.started } }
    /// The node-device XML of each transient device the policy created, in call order.
    var createdXML: [String] { recorded.withLock { $0.created } }

    func nodeDeviceExists(_ name: String) async throws -> Bool { try await inner.nodeDeviceExists(name) }

    func start(deviceNamed name: String) async throws {
        recorded.withLock { $0.started.append(name) }
        try await inner.start(deviceNamed: name)
        fake.emit(.nodeDevice(name: name, kind: .created))
    }

    func create(xml: String) async throws -> String {
        recorded.withLock { $0.created.append(xml) }
        let name = try await inner.create(xml: xml)
        fake.emit(.nodeDevice(name: name, kind: .created))
        return name
    }
}

extension MonitorHarness {
    /// Runs a `PolicyService` on this Monitor's index, acting through `actions` over the Monitor's own
    /// connection as `mdevmon run` wires it, for the duration of `body`; then cancels it first, as the
    /// daemon stops the policy before the Monitor.
    func withPolicy<T: Sendable>(
        config: PolicyConfig, stateDir: String, bootID: String, actions: any DeviceActions, log: LogCapture,
        _ body: (PolicyService) async throws -> T
    ) async throws -> T {
        let service = self.service
        let policy = PolicyService(
            index: service.index, waitForFirstSync: { await service.waitForFirstSync() }, actions: actions,
            config: config, store: StateStore(directory: stateDir), bootID: bootID, saveDelay: .milliseconds(10),
            logger: log.logger(label: "test.policy"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await policy.run() }
            defer { group.cancelAll() }
            return try await body(policy)
        }
    }
}
