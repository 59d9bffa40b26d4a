import Foundation
import Glibc

/// `Benchmarks/floor.c`, compiled at run time: libvirt's floor for a full listing, and the helper
/// that defines and undefines devices with a monotonic timestamp taken as libvirt returns.
struct FloorProgram: Sendable {
    let binary: String
    let uri: String

    /// Compiles `source` with `cc … -lvirt -O2` into `directory`.
    static func build(source: String, into directory: String, uri: String) throws -> FloorProgram {
        guard FileManager.default.fileExists(atPath: source) else {
            throw BenchError("floor.c not found at \(source); pass --floor-source")
        }
        guard let cc = which("cc") else { throw BenchError("no C compiler (cc) on PATH") }
        let binary = "\(directory)/floor"
        let (status, output) = try shell(cc, [source, "-lvirt", "-O2", "-o", binary])
        guard status == 0 else { throw BenchError("cc floor.c failed:\n\(output)") }
        return FloorProgram(binary: binary, uri: uri)
    }

    /// How a listing fetches each device (see floor.c).
    enum Mode: String, CaseIterable, Sendable {
        case xml, state, fullsync
    }

    /// Runs `reps` listings on one connection. - Returns: Milliseconds per repetition and the device count.
    func list(mode: Mode, reps: Int) throws -> (ms: [Double], devices: Int) {
        let (status, output) = try shell(binary, ["list", uri, mode.rawValue, String(reps)])
        guard status == 0 else { throw BenchError("floor list \(mode) failed: \(output)") }
        var times: [Double] = []
        var devices = 0
        for line in output.split(separator: "\n") where line.hasPrefix("rep ") {
            let f = line.split(separator: " ")
            guard f.count >= 3, let n = Int(f[1]), let ns = Double(f[2]) else { continue }
            devices = n
            times.append(ns / 1e6)
        }
        return (times, devices)
    }
}

/// A long-running `floor define` process: one read-write connection, commands over a pipe.
final class DefineHelper: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the event benchmark's driver).
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []

    init(_ floor: FloorProgram) throws {
        process.executableURL = URL(fileURLWithPath: floor.binary)
        process.arguments = ["define", floor.uri]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    struct Reply {
        var before: UInt64
        var after: UInt64
        var name: String
    }

    func define(parent: String, uuid: String, type: String) throws -> Reply {
        try command("define \(parent) \(uuid) \(type)")
    }

    func undefine(_ name: String) throws -> Reply { try command("undefine \(name)") }

    private func command(_ line: String) throws -> Reply {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        let reply = try readLine()
        let f = reply.split(separator: " ", maxSplits: 3)
        guard f.first == "ok", f.count == 4, let before = UInt64(f[1]), let after = UInt64(f[2]) else {
            throw BenchError("floor define: \(reply)")
        }
        return Reply(before: before, after: after, name: String(f[3]))
    }

    private func readLine() throws -> String {
        let fd = output.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeFirst(newline + 1)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw BenchError("floor define exited") }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
