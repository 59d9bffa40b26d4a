import Foundation
import Synchronization

/// Scrapes/s under concurrent load: `clients` keep-alive connections, each scraping back to back.
struct ThroughputResult: Codable, Sendable {
    var tool: String
    var clients: Int
    var seconds: Double
    var gzip: Bool
    var requests: Int
    var errors: Int
    var scrapesPerSecond: Double
    var megabytesPerSecond: Double
    /// Per-request latency under load, ms (built-in client only).
    var latency: Summary?
    /// The daemon's CPU per scrape under load, ms.
    var daemonCPUPerScrapeMS: Double?
}

enum Throughput {
    /// Runs the built-in client on `clients` threads for `seconds`.
    static func run(port: Int, clients: Int, seconds: Double, gzip: Bool, daemon: Daemon?) -> ThroughputResult {
        let results = Mutex<(requests: Int, errors: Int, bytes: Int, latencies: [Double])>((0, 0, 0, []))
        let group = DispatchGroup()
        let cpuBefore = daemon?.cpuSeconds
        let start = Mono.now()
        let deadline = start + UInt64(seconds * 1e9)
        for _ in 0..<clients {
            group.enter()
            let thread = Thread {
                var requests = 0, errors = 0, bytes = 0
                var latencies: [Double] = []
                if let http = try? HTTPConnection(port: port) {
                    while Mono.now() < deadline {
                        let t0 = Mono.now()
                        if (try? http.get("/metrics", gzip: gzip)) == 200 {
                            requests += 1
                            bytes += http.wireBytes
                            latencies.append(Mono.ms(t0, Mono.now()))
                        } else {
                            errors += 1
                        }
                    }
                } else {
                    errors += 1
                }
                results.withLock {
                    $0.requests += requests
                    $0.errors += errors
                    $0.bytes += bytes
                    $0.latencies += latencies
                }
                group.leave()
            }
            thread.start()
        }
        group.wait()
        let elapsed = Mono.ms(start, Mono.now()) / 1000
        let cpuAfter = daemon?.cpuSeconds
        let r = results.withLock { $0 }
        var cpuPerScrape: Double?
        if let cpuBefore, let cpuAfter, r.requests > 0 { cpuPerScrape = (cpuAfter - cpuBefore) * 1000 / Double(r.requests) }
        return ThroughputResult(
            tool: "built-in", clients: clients, seconds: elapsed, gzip: gzip, requests: r.requests, errors: r.errors,
            scrapesPerSecond: Double(r.requests) / elapsed, megabytesPerSecond: Double(r.bytes) / elapsed / 1_048_576,
            latency: Summary(r.latencies), daemonCPUPerScrapeMS: cpuPerScrape)
    }

    /// Runs `wrk` (2 threads, `clients` connections) if it is installed.
    static func wrk(_ path: String, port: Int, clients: Int, seconds: Int, gzip: Bool, daemon: Daemon?) -> ThroughputResult? {
        var arguments = ["-t2", "-c\(clients)", "-d\(seconds)s"]
        if gzip { arguments += ["-H", "Accept-Encoding: gzip"] }
        arguments.append("http://127.0.0.1:\(port)/metrics")
        let cpuBefore = daemon?.cpuSeconds
        guard let (status, output) = try? shell(path, arguments), status == 0 else { return nil }
        let cpuAfter = daemon?.cpuSeconds
        func value(after label: String) -> String? {
            output.split(separator: "\n").first { $0.contains(label) }?
                .split(separator: " ").last.map(String.init)
        }
        guard let rps = value(after: "Requests/sec:").flatMap(Double.init) else { return nil }
        let requestsLine = output.split(separator: "\n").first { $0.contains("requests in") }
        let requests = requestsLine.flatMap { Int($0.split(separator: " ").first ?? "") } ?? Int(rps * Double(seconds))
        let transfer = value(after: "Transfer/sec:") ?? "0MB"
        let mbps: Double = if transfer.hasSuffix("GB") { (Double(transfer.dropLast(2)) ?? 0) * 1024 }
            else if transfer.hasSuffix("MB") { Double(transfer.dropLast(2)) ?? 0 }
            else if transfer.hasSuffix("KB") { (Double(transfer.dropLast(2)) ?? 0) / 1024 }
            else { 0 }
        var cpuPerScrape: Double?
        if let cpuBefore, let cpuAfter, requests > 0 { cpuPerScrape = (cpuAfter - cpuBefore) * 1000 / Double(requests) }
        return ThroughputResult(
            tool: "wrk", clients: clients, seconds: Double(seconds), gzip: gzip, requests: requests, errors: 0,
            scrapesPerSecond: rps, megabytesPerSecond: mbps, latency: nil, daemonCPUPerScrapeMS: cpuPerScrape)
    }
}
