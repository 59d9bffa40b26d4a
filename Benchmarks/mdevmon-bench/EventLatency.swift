import Foundation
import Glibc

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
    /// callback → IndexChange, split: until the Monitor starts fetching the device; the device's
    /// fetch (lookup, XML, flags: libvirt RPCs); the parent's fetch; the rest (parse, apply, publish).
    var callbackToFetch: Summary?
    var deviceFetch: Summary?
    var parentFetch: Summary?
    var fetchedToIndex: Summary?
    /// callback → IndexChange minus the libvirt fetches: what mdevmon itself adds (queueing behind
    /// other events included).
    var ownTime: Summary?
    /// Undefines libvirt refused (device already gone); the bench deleted the mdevctl file instead.
    var undefineFailures = 0
}

enum EventLatency {
    /// Defines and undefines `count` devices one at a time, polling `/metrics` on `port` for each.
    /// `first` numbers the UUIDs so batches never reuse one.
    static func run(
        count: Int, first: Int, target: String, port: Int, helper: DefineHelper, fixture: Fixture,
        timeline: Timeline, budget: Double
    ) throws -> EventResult {
        let stopAt = Mono.now() + UInt64(budget * 1e9)
        var measured = 0
        let http = try HTTPConnection(port: port)
        var returnToMetrics: [Double] = [], callbackToMetrics: [Double] = [], callbackToIndex: [Double] = []
        var returnToCallback: [Double] = [], pollInterval: [Double] = [], defineCall: [Double] = []
        var callbackToFetch: [Double] = [], deviceFetch: [Double] = [], parentFetch: [Double] = []
        var fetchedToIndex: [Double] = [], ownTime: [Double] = []
        var missed = 0, undefineFailures = 0
        for k in first..<(first + count) {
            // libvirt rescans every mdevctl definition per define: at 10,000 devices an event takes seconds.
            if measured > 0 && Mono.now() > stopAt { break }
            measured += 1
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
                if let added, let fetch = timeline.time("fetch:\(reply.name)"),
                   let fetched = timeline.time("fetched:\(reply.name)"), fetch >= callback, fetched <= added {
                    callbackToFetch.append(Mono.ms(callback, fetch))
                    deviceFetch.append(Mono.ms(fetch, fetched))
                    var last = fetched
                    var libvirt = Mono.ms(fetch, fetched)
                    if let p0 = timeline.time("fetch:\(parent)"), let p1 = timeline.time("fetched:\(parent)"),
                       p0 >= fetched, p1 <= added {
                        parentFetch.append(Mono.ms(p0, p1))
                        libvirt += Mono.ms(p0, p1)
                        last = p1
                    }
                    fetchedToIndex.append(Mono.ms(last, added))
                    ownTime.append(Mono.ms(callback, added) - libvirt)
                }
            }
            do {
                _ = try helper.undefine(reply.name)
            } catch {
                // Someone else (a concurrent test's cleanup) may have removed it, or libvirt is mid-rescan:
                // make sure the definition is gone and go on.
                unlink("\(Fixture.directory)/\(fixture.parent(for: k))/\(uuid)")
                undefineFailures += 1
            }
            // The next event starts from a settled index: this device's removal has been applied.
            _ = timeline.wait("removed:\(reply.name)", timeout: 10)
            timeline.forget(["defined:\(reply.name)", "added:\(reply.name)", "undefined:\(reply.name)",
                             "removed:\(reply.name)", "fetch:\(reply.name)", "fetched:\(reply.name)"])
        }
        return EventResult(
            target: target, events: measured, missed: missed, returnToMetrics: Summary(returnToMetrics),
            callbackToMetrics: Summary(callbackToMetrics), callbackToIndex: Summary(callbackToIndex),
            returnToCallback: Summary(returnToCallback), pollInterval: Summary(pollInterval),
            defineCall: Summary(defineCall), callbackToFetch: Summary(callbackToFetch),
            deviceFetch: Summary(deviceFetch), parentFetch: Summary(parentFetch),
            fetchedToIndex: Summary(fetchedToIndex), ownTime: Summary(ownTime), undefineFailures: undefineFailures)
    }
}
