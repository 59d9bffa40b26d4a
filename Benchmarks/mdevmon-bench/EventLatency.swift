import Foundation

/// Latencies of one batch of define events, in ms. Reference points (CLOCK_MONOTONIC):
/// - *return*: `virNodeDeviceDefineXML` returned in the helper;
/// - *callback*: the event left libvirt's callback in the in-process Monitor (`TimestampingConnector`);
/// - *index*: an `IndexChange` subscriber saw `.deviceAdded` (the snapshot is already published);
/// - *metrics*: the first `/metrics` request whose response holds the device's series was sent
///   (the series was visible by then; the poll before it was not: `pollInterval` is the resolution).
struct EventResult: Codable, Sendable {
    var target: String
    var events: Int
    var missed: Int
    var returnToMetrics: Summary?
    var callbackToMetrics: Summary?
    var callbackToIndex: Summary?
    var returnToCallback: Summary?
    /// Time between consecutive polls of `/metrics`: the resolution of the `…ToMetrics` numbers.
    var pollInterval: Summary?
    var defineCall: Summary?
}

enum EventLatency {
    /// Defines and undefines `count` devices one at a time, polling `/metrics` on `port` for each.
    /// `first` numbers the UUIDs so batches never reuse one.
    static func run(
        count: Int, first: Int, target: String, port: Int, helper: DefineHelper, fixture: Fixture,
        timeline: Timeline
    ) throws -> EventResult {
        let http = try HTTPConnection(port: port)
        var returnToMetrics: [Double] = [], callbackToMetrics: [Double] = [], callbackToIndex: [Double] = []
        var returnToCallback: [Double] = [], pollInterval: [Double] = [], defineCall: [Double] = []
        var missed = 0
        for k in first..<(first + count) {
            let uuid = Fixture.eventUUID(k)
            let parent = Fixture.nodeName(pci: fixture.parent(for: k))
            let needle = Array(#"uuid="\#(uuid)""#.utf8)
            let reply = try helper.define(parent: parent, uuid: uuid, type: Fixture.mdevType)
            defineCall.append(Mono.ms(reply.before, reply.after))
            var seenAt: UInt64?
            var lastPoll: UInt64?
            let deadline = Mono.now() + 10_000_000_000
            while Mono.now() < deadline {
                let sent = Mono.now()
                if let lastPoll { pollInterval.append(Mono.ms(lastPoll, sent)) }
                lastPoll = sent
                guard try http.get("/metrics") == 200 else { throw BenchError("/metrics answered \(http.bodyCount) bytes, not 200") }
                if http.bodyContains(needle) {
                    seenAt = sent
                    break
                }
            }
            let callback = timeline.wait("defined:\(reply.name)", timeout: 2)
            let added = timeline.wait("added:\(reply.name)", timeout: 2)
            if let seenAt {
                returnToMetrics.append(Mono.ms(reply.after, seenAt))
                if let callback, target == "in-process" { callbackToMetrics.append(Mono.ms(callback, seenAt)) }
            } else {
                missed += 1
            }
            if let callback {
                returnToCallback.append(Mono.ms(reply.after, callback))
                if let added { callbackToIndex.append(Mono.ms(callback, added)) }
            }
            _ = try helper.undefine(reply.name)
            // The next event starts from a settled index: this device's removal has been applied.
            _ = timeline.wait("removed:\(reply.name)", timeout: 10)
            timeline.forget(["defined:\(reply.name)", "added:\(reply.name)", "undefined:\(reply.name)", "removed:\(reply.name)"])
        }
        return EventResult(
            target: target, events: count, missed: missed, returnToMetrics: Summary(returnToMetrics),
            callbackToMetrics: Summary(callbackToMetrics), callbackToIndex: Summary(callbackToIndex),
            returnToCallback: Summary(returnToCallback), pollInterval: Summary(pollInterval),
            defineCall: Summary(defineCall))
    }
}
