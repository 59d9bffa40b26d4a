import Exporter
import Foundation
import Glibc
import Monitor
import Synchronization

/// `--flood`: what unauthenticated clients can cost. With the fixture staged, `clients` keep-alive
/// connections ask for `/` back to back for `seconds` (then, with basic auth configured, with a wrong
/// password), while one prober scrapes `/metrics` every 10 ms and a driver defines an mdev every 2 s and
/// polls `/metrics` until it shows. The same prober and driver run first on the idle daemon.
///
/// Targets (issue 24): every define reaches `/metrics` within 1 s, and the flood's `/metrics` p99 stays
/// within 3× the idle one.
struct FloodResult: Codable, Sendable {
    var phase: String
    var devices: Int
    var clients: Int
    var seconds: Double
    /// The flood's requests by status (0: no answer).
    var statuses: [String: Int]
    var floodRequestsPerSecond: Double
    var idleMetrics: Summary?
    var floodMetrics: Summary?
    var idleDefines: Summary?
    var floodDefines: Summary?
    /// Defines that did not show within 10 s, and how many of those libvirt listed by then.
    var missedDefines: Int
    var missedButListedByLibvirt: Int
    var daemonCPUPercent: Double
    var peakRSSMiB: Double

    var defineMet: Bool { missedDefines == 0 && (floodDefines?.max ?? .infinity) <= 1000 }
    var metricsMet: Bool {
        guard let idle = idleMetrics?.p99, let flood = floodMetrics?.p99 else { return false }
        return flood <= 3 * idle
    }

    func lines() -> [String] {
        func p(_ s: Summary?) -> String {
            s.map { String(format: "p50 %.2f / p99 %.2f / max %.2f ms (n=%d)", $0.p50, $0.p99, $0.max, $0.count) } ?? "-"
        }
        let ratio = (floodMetrics?.p99 ?? .nan) / (idleMetrics?.p99 ?? .nan)
        return [
            "\(phase): \(clients) clients × \(Int(seconds)) s on \(devices) mdevs",
            "  flood requests: \(statuses.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))"
                + String(format: " (%.0f/s); daemon CPU %.0f %%, peak RSS %.1f MiB", floodRequestsPerSecond, daemonCPUPercent, peakRSSMiB),
            "  /metrics idle:  \(p(idleMetrics))",
            "  /metrics flood: \(p(floodMetrics))" + String(format: " → p99 %.1f× idle (target ≤ 3×: %@)", ratio, metricsMet ? "met" : "NOT met"),
            "  define → /metrics idle:  \(p(idleDefines))",
            "  define → /metrics flood: \(p(floodDefines)), missed \(missedDefines) (\(missedButListedByLibvirt) of them listed by libvirt)"
                + " (target ≤ 1 s: \(defineMet ? "met" : "NOT met"))",
        ]
    }
}

struct FloodOptions: Sendable {
    var uri: String
    var devices: Int
    var clients: Int
    var seconds: Double
    var idleSeconds: Double
    var daemonEnvironment: [String]
}

enum Flood {
    static let user = "bench"
    static let password = "right-password"

    /// Stages the fixture, then runs both phases against a fresh daemon each.
    static func run(options: FloodOptions, fixture: Fixture, helper: DefineHelper, daemonBinary: String,
                    tempDir: String) async throws -> [FloodResult] {
        note("\(options.devices) mdevs: writing the fixture")
        try fixture.grow(to: options.devices)
        let uri = options.uri, expected = options.devices
        try await OffPool.run {
            let connection = try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
            defer { connection.close() }
            try Fixture.waitForLibvirt(connection, expected: expected, timeout: max(300, Double(expected) / 10))
        }
        let webConfig = "\(tempDir)/web.yml"
        // exporter-toolkit's documented cost.
        try "basic_auth_users:\n  \(user): \(WebConfig.hashPassword(password, cost: 10))\n"
            .write(toFile: webConfig, atomically: true, encoding: .utf8)
        let wrong = "Basic " + Data("\(user):wrong-password".utf8).base64EncodedString()
        let right = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        var results: [FloodResult] = []
        for (phase, arguments, floodAuth, probeAuth) in [
            ("GET / without auth", [String](), String?.none, String?.none),
            ("GET / with basic auth, wrong password", ["--web.config.file", webConfig], wrong, right),
        ] {
            let directory = "\(tempDir)/flood-\(results.count)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let daemon = try Daemon(binary: daemonBinary, uri: uri, directory: directory,
                                    environment: options.daemonEnvironment, arguments: arguments)
            defer { daemon.stop() }
            note("flood, \(phase): starting mdevmon run")
            _ = try await OffPool.run { try daemon.waitHealthy(timeout: 600, authorization: probeAuth) }
            // Event devices of their own numbers, apart from the main benchmark's.
            let firstEvent = 500_000 + 100_000 * results.count
            results.append(try await OffPool.run {
                var events = firstEvent
                return try measure(phase: phase, options: options, daemon: daemon, fixture: fixture, helper: helper,
                                   floodAuth: floodAuth, probeAuth: probeAuth, events: &events)
            })
            for line in results.last!.lines() { note(line) }
        }
        return results
    }

    private static func measure(
        phase: String, options: FloodOptions, daemon: Daemon, fixture: Fixture, helper: DefineHelper,
        floodAuth: String?, probeAuth: String?, events: inout Int
    ) throws -> FloodResult {
        let port = daemon.port
        // Warm up: the first scrape, page and auth check of the run.
        let warm = try HTTPConnection(port: port)
        warm.authorization = probeAuth
        for path in ["/metrics", "/", "/api/v1/devices", "/metrics"] { try warm.get(path) }

        note("flood, \(phase): idle for \(Int(options.idleSeconds)) s")
        let idle = try probe(uri: options.uri, port: port, seconds: options.idleSeconds, authorization: probeAuth, fixture: fixture,
                             helper: helper, events: &events)

        note("flood, \(phase): \(options.clients) clients for \(Int(options.seconds)) s")
        let stop = Atomic<Bool>(false)
        let statuses = Mutex<[Int: Int]>([:])
        let group = DispatchGroup()
        for _ in 0..<options.clients {
            group.enter()
            Thread {
                var counts: [Int: Int] = [:]
                var http = try? HTTPConnection(port: port)
                http?.authorization = floodAuth
                while !stop.load(ordering: .relaxed) {
                    if let connection = http, let status = try? connection.get("/") {
                        counts[status, default: 0] += 1
                    } else {
                        counts[0, default: 0] += 1
                        usleep(1000)
                        http = try? HTTPConnection(port: port)
                        http?.authorization = floodAuth
                    }
                }
                statuses.withLock { $0.merge(counts, uniquingKeysWith: +) }
                group.leave()
            }.start()
        }
        let cpuBefore = daemon.cpuSeconds
        let start = Mono.now()
        let flood = try probe(uri: options.uri, port: port, seconds: options.seconds, authorization: probeAuth, fixture: fixture,
                              helper: helper, events: &events)
        let elapsed = Mono.ms(start, Mono.now()) / 1000
        let cpu = daemon.cpuSeconds - cpuBefore
        stop.store(true, ordering: .relaxed)
        group.wait()
        let counts = statuses.withLock { $0 }
        return FloodResult(
            phase: phase, devices: options.devices, clients: options.clients, seconds: elapsed,
            statuses: Dictionary(uniqueKeysWithValues: counts.map { (String($0.key), $0.value) }),
            floodRequestsPerSecond: Double(counts.values.reduce(0, +)) / elapsed,
            idleMetrics: idle.metrics, floodMetrics: flood.metrics, idleDefines: idle.defines,
            floodDefines: flood.defines, missedDefines: idle.missed + flood.missed,
            missedButListedByLibvirt: idle.missedButListed + flood.missedButListed,
            daemonCPUPercent: cpu / elapsed * 100, peakRSSMiB: daemon.peakRSSMiB)
    }

    private struct Probe {
        var metrics: Summary?
        var defines: Summary?
        var missed: Int
        var missedButListed: Int
    }

    /// For `seconds`: a thread scraping `/metrics` every 10 ms, and on this one a define every 2 s,
    /// timed from libvirt's return to the first `/metrics` response that holds the device.
    private static func probe(uri: String, port: Int, seconds: Double, authorization: String?, fixture: Fixture,
                              helper: DefineHelper, events: inout Int) throws -> Probe {
        let deadline = Mono.now() + UInt64(seconds * 1e9)
        let latencies = Mutex<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard let http = try? HTTPConnection(port: port) else { return }
            http.authorization = authorization
            var times: [Double] = []
            while Mono.now() < deadline {
                let t0 = Mono.now()
                let status = try? http.get("/metrics")
                times.append(status == 200 ? Mono.ms(t0, Mono.now()) : 10_000)
                usleep(10_000)
            }
            latencies.withLock { $0 = times }
        }.start()

        let http = try HTTPConnection(port: port)
        http.authorization = authorization
        var defines: [Double] = []
        var missed = 0, missedButListed = 0
        while Mono.now() + 3_000_000_000 < deadline {
            let next = Mono.now() + 2_000_000_000
            let k = events
            events += 1
            let uuid = Fixture.eventUUID(k)
            let reply = try helper.define(parent: Fixture.nodeName(pci: fixture.parent(for: k)), uuid: uuid, type: Fixture.mdevType)
            let needle = Array(#"uuid="\#(uuid)""#.utf8)
            var seen: UInt64?
            while Mono.now() < reply.after + 10_000_000_000 {
                if (try? http.get("/metrics")) == 200, http.bodyContains(needle) {
                    seen = Mono.now()
                    break
                }
            }
            if let seen {
                defines.append(Mono.ms(reply.after, seen))
            } else {
                // Whose delay: does libvirt itself list the device by now?
                missed += 1
                if let connection = try? LibvirtConnectorImpl().connect(uri: uri, readOnly: true) {
                    if (try? connection.listNodeDevices(.mdevs))?.contains(reply.name) == true { missedButListed += 1 }
                    connection.close()
                }
            }
            if (try? helper.undefine(reply.name)) == nil {
                unlink("\(Fixture.directory)/\(fixture.parent(for: k))/\(uuid)")
            }
            while Mono.now() < next { usleep(10_000) }
        }
        done.wait()
        return Probe(metrics: Summary(latencies.withLock { $0 }), defines: Summary(defines), missed: missed,
                     missedButListed: missedButListed)
    }
}
