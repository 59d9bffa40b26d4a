import NIOCore
import Synchronization

/// Whether a connection's client is still there, so work queued for one of its requests (a bcrypt
/// check, a page render) can be dropped when it leaves.
///
/// Hummingbird does not cancel a request's task when its client goes away, and the server allows
/// half-closed connections, so the channel stays open until a write fails. Like Go's net/http (and so
/// exporter-toolkit), the end of the client's input counts as leaving.
final class Departure: Sendable {
    private struct State {
        var gone = false
        var watchers: [UInt64: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    var isGone: Bool { state.withLock { $0.gone } }

    /// Calls `callback` once when the client leaves, at once if it has left.
    func whenGone(id: UInt64, _ callback: @escaping @Sendable () -> Void) {
        let goneAlready = state.withLock { s in
            if !s.gone { s.watchers[id] = callback }
            return s.gone
        }
        if goneAlready { callback() }
    }

    func forget(id: UInt64) {
        _ = state.withLock { $0.watchers.removeValue(forKey: id) }
    }

    func markGone() {
        let watchers = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.gone else { return [] }
            s.gone = true
            defer { s.watchers = [:] }
            return Array(s.watchers.values)
        }
        for watcher in watchers { watcher() }
    }
}

/// Every open connection's `Departure`, found by its channel.
final class Departures: Sendable {
    private let byChannel = Mutex<[ObjectIdentifier: Departure]>([:])

    /// The connection's departure, while it is open.
    func departure(of channel: any Channel) -> Departure? {
        byChannel.withLock { $0[ObjectIdentifier(channel)] }
    }

    /// Open connections (tests).
    var count: Int { byChannel.withLock { $0.count } }

    /// A handler for each connection's pipeline.
    func handler() -> any RemovableChannelHandler { Handler(departures: self) }

    private final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = Any
        let departures: Departures
        let departure = Departure()

        init(departures: Departures) { self.departures = departures }

        func handlerAdded(context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            departures.byChannel.withLock { $0[id] = departure }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            departures.byChannel.withLock { _ = $0.removeValue(forKey: id) }
            departure.markGone()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { departure.markGone() }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            departure.markGone()
            context.fireChannelInactive()
        }
    }
}
