import Doctor
import Foundation
import Logging
import Monitor
import Policy
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// The host checks' libvirt probe can block for long (a libvirtd that does not answer): shutdown must
/// not wait for it, and a run cut short publishes and journals nothing.
@Suite struct HostCheckShutdownTests {
    @Test func shutdownDoesNotWaitForAHangingProbe() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let entered = Atomic(false)
        let release = DispatchSemaphore(value: 0)
        defer { release.signal() }
        let log = LogCapture()
        let service = HostCheckService(
            uri: "test:///hang", readOnly: true,
            inputs: HostDoctor.Inputs(stateDir: dir.path),
            config: { [file = dir.path + "/mdevmon.yaml"] in HostDoctor.LoadedConfig(file: file, config: PolicyConfig()) },
            snapshot: { DeviceIndex(uri: "test:///hang").snapshot }, waitForFirstSync: {},
            probe: { uri, readOnly in
                entered.store(true, ordering: .sequentiallyConsistent)
                release.wait()
                return LibvirtProbe(uri: uri, readOnly: readOnly, connectError: "released after the test")
            },
            logger: log.logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test.group") { _ in SwiftLogNoOpLogHandler() }))
        let finished = Atomic(false)
        let runner = Task {
            try? await group.run()
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        defer { runner.cancel() }
        #expect(await eventually { entered.load(ordering: .sequentiallyConsistent) }, "the probe never ran")
        await group.triggerGracefulShutdown()
        #expect(await eventually(timeout: .seconds(5)) { finished.load(ordering: .sequentiallyConsistent) },
                "shutdown waited for the probe")
        #expect(service.results.report == nil, "a run cut short published results")
        #expect(log.records.isEmpty, "a run cut short journaled: \(log.records.map(\.message))")
    }
}
