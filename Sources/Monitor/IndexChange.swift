/// One change to the index. Incremental events and full resyncs both produce these, so consumers
/// (Policy, logging, metrics) never need a special path for reconnects.
public enum IndexChange: Hashable, Sendable {
    case deviceAdded(MdevDevice)
    case deviceChanged(old: MdevDevice, new: MdevDevice)
    case deviceRemoved(MdevDevice)
    case parentAdded(ParentDevice)
    case parentChanged(old: ParentDevice, new: ParentDevice)
    case parentRemoved(ParentDevice)
    case domainAdded(DomainInfo)
    case domainChanged(old: DomainInfo, new: DomainInfo)
    case domainRemoved(DomainInfo)
    /// The libvirt connection was lost (the index is stale) or restored and resynced.
    case connection(ConnectionState)
}

/// Whether the index reflects libvirt right now.
public enum ConnectionState: Hashable, Sendable {
    /// Connected, callbacks registered and a full sync done.
    case synced
    /// Not connected; the last error says why.
    case disconnected(reason: String)
}

extension IndexChange {
    /// The device after the change (or before it, for a removal), when the change concerns a device.
    public var device: MdevDevice? {
        switch self {
        case .deviceAdded(let d), .deviceRemoved(let d), .deviceChanged(_, let d): d
        default: nil
        }
    }
}
