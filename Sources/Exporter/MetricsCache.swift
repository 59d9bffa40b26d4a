import HashTreeCollections
import Monitor
import Synchronization

/// Remembers the rendered device and domain families of the last scrape with the index data they
/// came from. Between libvirt events consecutive snapshots share that data's storage, so checking
/// for a hit is O(1) and a scrape of 10,000 unchanged devices mostly copies bytes.
///
/// Rendering with or without a cache produces identical text; the cache only saves work.
public final class MetricsCache: Sendable {
    private struct DeviceEntry: Sendable {
        var devices: TreeDictionary<MdevKey, MdevDevice>
        var parents: TreeDictionary<String, ParentDevice>
        var families: [RenderedFamily]
    }

    private struct DomainEntry: Sendable {
        var domains: TreeDictionary<String, DomainInfo>
        var families: [RenderedFamily]
    }

    private let deviceEntry = Mutex<DeviceEntry?>(nil)
    private let domainEntry = Mutex<DomainEntry?>(nil)

    public init() {}

    func deviceFamilies(_ state: IndexState, render: (IndexState) -> [RenderedFamily]) -> [RenderedFamily] {
        let cached = deviceEntry.withLock { $0 }
        if let cached, cached.devices == state.devices, cached.parents == state.parents {
            return cached.families
        }
        let families = render(state)
        deviceEntry.withLock {
            $0 = DeviceEntry(devices: state.devices, parents: state.parents, families: families)
        }
        return families
    }

    func domainFamilies(_ state: IndexState, render: (IndexState) -> [RenderedFamily]) -> [RenderedFamily] {
        let cached = domainEntry.withLock { $0 }
        if let cached, cached.domains == state.domains { return cached.families }
        let families = render(state)
        domainEntry.withLock { $0 = DomainEntry(domains: state.domains, families: families) }
        return families
    }
}
