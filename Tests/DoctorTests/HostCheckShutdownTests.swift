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
        let (ready, ended) = await shutDownGracefully(service, once: { entered.load(ordering: .sequentiallyConsistent) })
        #expect(ready, "the probe never ran")
        #expect(ended, "shutdown waited for the probe")
        #expect(service.results.report == nil, "a run cut short published results")
        #expect(log.records.isEmpty, "a run cut short journaled: \(log.records.map(\.message))")
    }
}
