/// What the Monitor does next, as the event queue hands it out.
public enum LibvirtWork: Hashable, Sendable {
    /// Fetch this node device's current state; `kinds` are the events that arrived for it since it was
    /// last handed out (a burst of N events for one device is one fetch).
    case nodeDevice(name: String, kinds: Set<NodeDeviceEventKind>)
    /// Fetch this domain's current state.
    case domain(name: String, kinds: Set<DomainEventKind>)
    /// Re-read everything (a full sync), for these reasons.
    case resync(Set<ResyncReason>)
    /// The connection closed; nothing queued before it is worth fetching on a dead connection.
    case closed(reason: String)
}

extension LibvirtWork: CustomStringConvertible {
    /// One line for the journal: `node device NAME (created, updated)`.
    public var description: String {
        switch self {
        case .nodeDevice(let name, let kinds): "node device \(name) (\(kinds.map(\.rawValue).sorted().joined(separator: ", ")))"
        case .domain(let name, let kinds): "domain \(name) (\(kinds.map(\.rawValue).sorted().joined(separator: ", ")))"
        case .resync: "full resync"
        case .closed(let reason): "connection closed: \(reason)"
        }
    }
}

/// Why the Monitor re-reads everything instead of fetching what an event names.
public enum ResyncReason: Hashable, Sendable {
    /// More objects changed at once than the queue (or inotify's own queue) holds.
    case overflow
    /// The watched domain configuration directory went away (removed, or moved or renamed over);
    /// `watchingForReturn` says whether its parent is watched for a new one.
    case configDirectoryLost(String, watchingForReturn: Bool)
    /// A directory by that name is there again and watched; what changed in between is unknown.
    case configDirectoryBack(String)
}

/// The mailbox between libvirt's callbacks and the Monitor: bounded and coalesced per object.
///
/// Two lanes: lifecycle events (created, deleted, defined, undefined, and every domain event) are handed
/// out before node-device objects that only had UPDATE events. libvirt 11.3 sends an UPDATE for every mdev
/// of a parent whenever mdevctl's state changes, a dozen around one CREATED; the CREATED (a parent's
/// capacity moving, a device appearing) must not wait for their fetches. An object gets no second fetch:
/// one that an UPDATE queued moves ahead when a lifecycle event follows. Every ninth hand-out comes from
/// the update lane when it has anything, so a steady stream of lifecycle events cannot starve updates.
/// A re-read the Monitor requests for a parent sharing a pool (`requestRefresh`) also waits in the
/// lifecycle lane: it follows a capacity change, and behind 11.3's dozen UPDATEs it came a second late.
/// A lane's keys for objects already handed out through the other lane are skipped, and dropped once they
/// outnumber the waiting objects, so both lanes stay bounded by the capacity.
///
/// Overflow policy: at most `capacity` distinct objects wait; one more turns the whole queue into a
/// single `.resync`, so memory stays bounded and nothing is lost (the resync reads libvirt's truth).
/// Every event is still counted (`mdev_events_total`), coalesced or not.
public final class EventQueue: Sendable {
    private enum Key: Hashable, Sendable {
        case nodeDevice(String)
        case domain(String)
    }

    /// Keys in arrival order; a key whose object was handed out through the other lane is skipped.
    private struct Lane: Sendable {
        var order: [Key] = []
        var head = 0

        mutating func append(_ key: Key) { order.append(key) }

        mutating func pop() -> Key? {
            guard head < order.count else { return nil }
            let key = order[head]
            head += 1
            if head * 2 > order.count { order.removeFirst(head); head = 0 }
            return key
        }

        var pending: Int { order.count - head }

        /// Keeps the first key of each object `live` accepts, in order.
        mutating func compact(_ live: (Key) -> Bool) {
            var seen = Set<Key>()
            order = order[head...].filter { live($0) && seen.insert($0).inserted }
            head = 0
        }
    }

    private struct Contents: Sendable {
        var lifecycle = Lane()
        var updates = Lane()
        var nodeDeviceKinds: [String: Set<NodeDeviceEventKind>] = [:]
        var domainKinds: [String: Set<DomainEventKind>] = [:]
        var counts: [EventCounterKey: Int] = [:]
        var resync = false
        var resyncReasons: Set<ResyncReason> = []
        var closed: String?
        var stats = EventQueueStats()
        /// Hand-outs from the lifecycle lane since the update lane's last turn.
        var lifecycleStreak = 0
        /// Node devices queued for a requested re-read (no lifecycle event of their own): lifecycle lane.
        var refreshes: Set<String> = []
        /// When each waiting object was queued (its first event since it was last handed out).
        var queuedAt: [Key: ContinuousClock.Instant] = [:]

        /// Distinct objects waiting.
        var waiting: Int { nodeDeviceKinds.count + domainKinds.count }

        func waitsForUpdatesOnly(_ key: Key) -> Bool {
            if case .nodeDevice(let name) = key { nodeDeviceKinds[name] == [.updated] && !refreshes.contains(name) } else { false }
        }

        func waitsForLifecycle(_ key: Key) -> Bool {
            switch key {
            case .nodeDevice(let name): nodeDeviceKinds[name].map { $0 != [.updated] || refreshes.contains(name) } ?? false
            case .domain(let name): domainKinds[name] != nil
            }
        }

        /// Drops keys of objects no longer waiting in that lane once they outnumber the waiting objects.
        mutating func boundLanes() {
            let limit = 2 * waiting + 64
            if updates.pending > limit { updates.compact(waitsForUpdatesOnly) }
            if lifecycle.pending > limit { lifecycle.compact(waitsForLifecycle) }
        }
    }

    public let capacity: Int
    private let mailbox = Mailbox(Contents())
    private let observe: (@Sendable (LibvirtEvent) -> Void)?

    /// - Parameters:
    ///   - capacity: how many distinct objects may wait before the queue falls back to a resync.
    ///   - observe: sees every event as it is pushed (benchmarks stamp callback times with it).
    public init(capacity: Int = 65_536, observe: (@Sendable (LibvirtEvent) -> Void)? = nil) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.observe = observe
    }

    /// Adds one event (from a libvirt callback: cheap, never blocks on the consumer).
    public func push(_ event: LibvirtEvent) {
        observe?(event)
        let capacity = capacity
        mailbox.post { c in
            switch event {
            case .connectionClosed(let reason):
                if c.closed == nil { c.closed = reason }
            case .nodeDevice(let name, let kind):
                c.counts[EventCounterKey(source: "nodedev", event: kind.rawValue), default: 0] += 1
                c.stats.received += 1
                if let queued = c.nodeDeviceKinds[name] {
                    c.nodeDeviceKinds[name]!.insert(kind)
                    // Only updates so far: it waits in the update lane; now it moves ahead.
                    if kind != .updated && queued == [.updated] && !c.refreshes.contains(name) {
                        c.lifecycle.append(.nodeDevice(name))
                        c.boundLanes()
                    }
                } else if Self.admit(.nodeDevice(name), updateOnly: kind == .updated, into: &c, capacity: capacity) {
                    c.nodeDeviceKinds[name] = [kind]
                }
            case .domain(let name, let kind):
                c.counts[EventCounterKey(source: "domain", event: kind.rawValue), default: 0] += 1
                c.stats.received += 1
                if c.domainKinds[name] != nil {
                    c.domainKinds[name]!.insert(kind)
                } else if Self.admit(.domain(name), updateOnly: false, into: &c, capacity: capacity) {
                    c.domainKinds[name] = [kind]
                }
            }
        }
    }

    /// Queues a re-read of a node device libvirt sent no event for (a parent sharing its pool of instances
    /// with one whose instances moved): handed out as an UPDATE, but from the lifecycle lane (a device
    /// waiting behind UPDATEs only moves ahead), coalesced with the device's own events, and not counted
    /// as an event libvirt sent.
    func requestRefresh(nodeDevice name: String) {
        let capacity = capacity
        mailbox.post { c in
            if let queued = c.nodeDeviceKinds[name] {
                guard queued == [.updated], c.refreshes.insert(name).inserted else { return }
                c.lifecycle.append(.nodeDevice(name))
                c.boundLanes()
            } else if Self.admit(.nodeDevice(name), updateOnly: false, into: &c, capacity: capacity) {
                c.nodeDeviceKinds[name] = [.updated]
                c.refreshes.insert(name)
            }
        }
    }

    /// Drops every queued object for one resync: a source lost track of what changed (inotify's own
    /// queue overflowed, its directory went away or came back).
    func requestResync(_ reason: ResyncReason) {
        mailbox.post { c in
            guard c.closed == nil else { return }
            Self.dropAllForResync(&c)
            c.resyncReasons.insert(reason)
        }
    }

    /// Queues a new object, or, at capacity, drops every queued object for one resync.
    private static func admit(_ key: Key, updateOnly: Bool, into c: inout Contents, capacity: Int) -> Bool {
        if c.resync || c.closed != nil { return false }
        guard c.waiting < capacity else {
            dropAllForResync(&c)
            c.resyncReasons.insert(.overflow)
            c.stats.overflows += 1
            return false
        }
        if updateOnly { c.updates.append(key) } else { c.lifecycle.append(key) }
        c.queuedAt[key] = .now
        c.boundLanes()
        return true
    }

    /// Forgets every queued object: the one resync that replaces them reads libvirt's truth.
    private static func dropAllForResync(_ c: inout Contents) {
        c.lifecycle = Lane()
        c.updates = Lane()
        c.nodeDeviceKinds = [:]
        c.domainKinds = [:]
        c.refreshes = []
        c.queuedAt = [:]
        c.resync = true
    }

    /// Ends the queue (the connection was closed by its owner); the consumer then gets nil.
    public func finish() { mailbox.finish() }

    /// The next piece of work and the events counted since the previous call; nil once finished or
    /// when the task is cancelled.
    public func next() async -> (work: LibvirtWork, counts: [EventCounterKey: Int])? {
        await mailbox.take { c -> (LibvirtWork, [EventCounterKey: Int])? in
            let work: LibvirtWork
            if let reason = c.closed {
                work = .closed(reason: reason)
            } else if c.resync {
                c.resync = false
                work = .resync(c.resyncReasons)
                c.resyncReasons = []
            } else if let next = Self.nextObject(&c) {
                work = next
            } else {
                return nil
            }
            c.stats.handedOut += 1
            defer { c.counts = [:] }
            return (work, c.counts)
        }
    }

    /// The first waiting object, lifecycle lane first (but the update lane's turn every ninth hand-out);
    /// keys of objects already handed out through the other lane are skipped.
    private static func nextObject(_ c: inout Contents) -> LibvirtWork? {
        while true {
            let updatesTurn = c.lifecycleStreak >= 8 && c.updates.pending > 0
            let popped: (key: Key, fromUpdates: Bool)?
            if updatesTurn {
                popped = c.updates.pop().map { ($0, true) }
            } else {
                popped = c.lifecycle.pop().map { ($0, false) } ?? c.updates.pop().map { ($0, true) }
            }
            guard let (key, fromUpdates) = popped else { return nil }
            var work: LibvirtWork?
            switch key {
            case .nodeDevice(let name):
                if let kinds = c.nodeDeviceKinds.removeValue(forKey: name) {
                    c.refreshes.remove(name)
                    work = .nodeDevice(name: name, kinds: kinds)
                }
            case .domain(let name):
                if let kinds = c.domainKinds.removeValue(forKey: name) { work = .domain(name: name, kinds: kinds) }
            }
            guard let work else { continue }
            if let queued = c.queuedAt.removeValue(forKey: key) { c.stats.waited.add(.now - queued) }
            c.lifecycleStreak = fromUpdates ? 0 : c.lifecycleStreak + 1
            return work
        }
    }

    /// Counters for tests and benchmarks: events in, work out, overflows.
    public var stats: EventQueueStats { mailbox.peek { $0.stats } }
    /// Keys both lanes hold, stale ones included (tests prove the bound).
    var laneKeys: Int { mailbox.peek { $0.lifecycle.pending + $0.updates.pending } }

    /// Objects waiting now.
    public var waiting: Int { mailbox.peek { $0.waiting } }
}

/// How much the event queue coalesced.
public struct EventQueueStats: Hashable, Sendable {
    /// Device and domain events pushed.
    public var received = 0
    /// Pieces of work handed to the consumer (fetches, resyncs, the close).
    public var handedOut = 0
    /// Times the queue hit its capacity and fell back to a resync.
    public var overflows = 0
    /// Objects handed out, and how long they had waited since their first event.
    public var waited = DurationTotal()
}
