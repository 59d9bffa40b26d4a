/// What a subscriber of the index receives: the changes in order, or, when it fell behind, the two
/// states whose difference is what it missed.
public enum IndexUpdate: Sendable {
    case changes([IndexChange])
    /// The subscriber fell more than its capacity behind, so its queued changes were dropped: `from` is
    /// the state it had seen in full, `to` the state now, `connection` the connection changes meanwhile.
    case resync(from: IndexState, to: IndexState, connection: [IndexChange])

    /// The changes either way: a resync's are the diff of its two states (then its connection changes).
    public var changes: [IndexChange] {
        switch self {
        case .changes(let changes): changes
        case .resync(let from, let to, let connection): IndexState.diff(from: from, to: to) + connection
        }
    }
}

/// One subscriber's bounded queue of index changes. Overflow policy: past `capacity` queued changes
/// the queue keeps only the state the subscriber last saw in full and the state now, and hands out one
/// `.resync`, so a slow subscriber costs bounded memory and still misses nothing.
///
/// The index holds subscriptions weakly: dropping the last reference unsubscribes.
public final class IndexSubscription: AsyncSequence, Sendable {
    public typealias Element = IndexUpdate

    private struct Contents: Sendable {
        var buffer: [IndexChange] = []
        /// The state before the first change in `buffer` (what the subscriber has seen in full).
        var baseline: IndexState?
        var overflow: (from: IndexState, to: IndexState, connection: [IndexChange])?
        var overflows = 0
    }

    public let capacity: Int
    /// Whether the index had ever finished a full sync when this subscription began (so the first sync's
    /// changes are not among what it receives).
    public let startedSynced: Bool
    private let mailbox = Mailbox(Contents())

    init(capacity: Int, startedSynced: Bool) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.startedSynced = startedSynced
    }

    /// Called by the index, in order, for every mutation that changed something.
    func publish(_ changes: [IndexChange], before: IndexState, after: IndexState) {
        let capacity = capacity
        mailbox.post { c in
            if c.overflow != nil {
                c.overflow!.to = after
                let connection = changes.filter { if case .connection = $0 { true } else { false } }
                // Connection changes are rare; a bounded tail is enough to tell lost from restored.
                c.overflow!.connection = Array((c.overflow!.connection + connection).suffix(8))
                return
            }
            if c.buffer.isEmpty { c.baseline = before }
            if c.buffer.count + changes.count > capacity {
                let connection = (c.buffer + changes).filter { if case .connection = $0 { true } else { false } }
                // Behind only if changes were already waiting; one batch larger than the queue (a full
                // sync of a big host) is delivered the same way but is not the subscriber's fault.
                if !c.buffer.isEmpty { c.overflows += 1 }
                c.overflow = (c.baseline ?? before, after, Array(connection.suffix(8)))
                c.buffer = []
                c.baseline = nil
            } else {
                c.buffer += changes
            }
        }
    }

    func finish() { mailbox.finish() }

    /// The next update; nil once the index finished or the task is cancelled.
    public func next() async -> IndexUpdate? {
        await mailbox.take { c -> IndexUpdate? in
            if let overflow = c.overflow {
                c.overflow = nil
                return .resync(from: overflow.from, to: overflow.to, connection: overflow.connection)
            }
            guard !c.buffer.isEmpty else { return nil }
            defer {
                c.buffer = []
                c.baseline = nil
            }
            return .changes(c.buffer)
        }
    }

    /// How often this subscriber fell behind with changes waiting (tests, metrics).
    public var overflows: Int { mailbox.peek { $0.overflows } }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: IndexSubscription
        public mutating func next() async -> IndexUpdate? { await subscription.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
