/// Polls `condition` until it holds or `timeout` passes; returns whether it held. Tests assert on the
/// result, so a slow machine only makes a test slower, never a sleep-length guess. The default timeout is
/// generous because CI machines are loaded; latency targets are measured by the benchmarks instead.
/// - Parameters:
///   - timeout: How long to keep polling before giving up.
///   - interval: The pause between two polls (raise it when the condition runs a subprocess).
///   - condition: The positive sign the test waits for.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
