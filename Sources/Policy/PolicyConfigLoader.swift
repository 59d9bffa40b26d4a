import Foundation
import Monitor
import Yams

extension PolicyConfig {
    /// The built-in default path; when it does not exist the defaults apply.
    public static let defaultPath = "/etc/mdevmon/mdevmon.yaml"

    /// Loads `path`. A missing file at the default path yields defaults; a missing explicit file,
    /// unreadable or invalid YAML, an unknown or repeated key or a wrong type is a `ConfigError`.
    /// - Parameter isDefaultPath: whether `path` counts as the default (nil: whether it is `defaultPath`).
    public static func load(path: String, isDefaultPath: Bool? = nil) throws(ConfigError) -> PolicyConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            if isDefaultPath ?? (path == defaultPath) { return PolicyConfig() }
            throw ConfigError(file: path, line: nil, field: "(file)", problem: "does not exist")
        }
        let text: String
        switch WholeFile.read(path) {
        case .success(let bytes): text = String(decoding: bytes, as: UTF8.self)
        case .failure(let reason): throw ConfigError(file: path, line: nil, field: "(file)", problem: "cannot be read: \(reason)")
        }
        return try parse(text, file: path)
    }

    /// Parses configuration YAML; `file` only names the source in errors.
    public static func parse(_ yaml: String, file: String) throws(ConfigError) -> PolicyConfig {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), field: "(yaml)", problem: "\(error)".split(separator: "\n").first.map(String.init) ?? "invalid YAML")
        } catch {
            throw ConfigError(file: file, line: nil, field: "(yaml)", problem: "\(error)")
        }
        var config = PolicyConfig()
        guard let node else { return config }  // An empty file means defaults.
        let r = Reader(file: file)
        var retryInitialLine: Int?, retryMaxLine: Int?
        try r.mapping(node, at: "", keys: ["dry_run", "ownership", "policies"]) { key, value throws(ConfigError) in
            switch key {
            case "dry_run": config.dryRun = try r.bool(value, at: "dry_run")
            case "ownership":
                try r.mapping(value, at: "ownership", keys: ["parents", "mdev_types", "uuids", "exclude_uuids"]) { k, v throws(ConfigError) in
                    let list = try r.strings(v, at: "ownership.\(k)")
                    switch k {
                    case "parents": config.ownership.parents = list
                    case "mdev_types": config.ownership.mdevTypes = list
                    case "uuids": config.ownership.uuids = list
                    default: config.ownership.excludeUUIDs = list
                    }
                }
            default:
                try r.mapping(value, at: "policies", keys: ["restore", "domain_references"]) { k, v throws(ConfigError) in
                    if k == "restore" {
                        try r.mapping(v, at: "policies.restore", keys: [
                            "enabled", "recreate_transient", "autostart_grace_period", "retry_initial", "retry_max", "deadline",
                            "max_concurrent", "wait_for_type",
                        ]) { f, x throws(ConfigError) in
                            let path = "policies.restore.\(f)"
                            switch f {
                            case "enabled": config.restore.enabled = try r.bool(x, at: path)
                            case "recreate_transient": config.restore.recreateTransient = try r.bool(x, at: path)
                            case "wait_for_type": config.restore.waitForType = try r.bool(x, at: path)
                            // A grace period of 0 starts at once and a deadline of 0 tries once; a retry delay
                            // of 0 would retry in a tight loop against libvirtd.
                            case "autostart_grace_period": config.restore.autostartGracePeriod = try r.duration(x, at: path, zero: true)
                            case "retry_initial":
                                config.restore.retryInitial = try r.duration(x, at: path, zero: false)
                                retryInitialLine = x.mark?.line
                            case "retry_max":
                                config.restore.retryMax = try r.duration(x, at: path, zero: false)
                                retryMaxLine = x.mark?.line
                            case "max_concurrent":
                                config.restore.maxConcurrent = try r.int(x, at: path, in: 1...PolicyConfig.Restore.maxConcurrentLimit)
                            default: config.restore.deadline = try r.duration(x, at: path, zero: true)
                            }
                        }
                    } else {
                        try r.mapping(v, at: "policies.domain_references", keys: ["enabled"]) { _, x throws(ConfigError) in
                            config.domainReferences.enabled = try r.bool(x, at: "policies.domain_references.enabled")
                        }
                    }
                }
            }
        }
        if config.restore.retryInitial > config.restore.retryMax {
            // Name the field the operator wrote: retry_max alone can fall below the default retry_initial.
            if retryInitialLine != nil || retryMaxLine == nil {
                throw ConfigError(file: file, line: retryInitialLine, field: "policies.restore.retry_initial",
                                  problem: "must not exceed retry_max (\(config.restore.retryMax))")
            }
            throw ConfigError(file: file, line: retryMaxLine, field: "policies.restore.retry_max",
                              problem: "must not be less than retry_initial (\(config.restore.retryInitial), the default)")
        }
        return config
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }
}

/// Walks YAML nodes, turning every mismatch into a `ConfigError` with the node's line.
private struct Reader {
    let file: String

    func fail(_ node: Node, _ field: String, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, field: field, problem: problem)
    }

    func mapping(_ node: Node, at path: String, keys: [String], _ each: (String, Node) throws(ConfigError) -> Void) throws(ConfigError) {
        guard case .mapping(let mapping) = node else {
            throw fail(node, path.isEmpty ? "(top level)" : path, "must be a mapping")
        }
        // YAML parsers tend to merge a repeated key, silently keeping one of the two values.
        var seen: [String: Int?] = [:]
        for (k, v) in mapping {
            guard let key = k.string else { throw fail(k, path, "keys must be strings") }
            let field = path.isEmpty ? key : "\(path).\(key)"
            guard keys.contains(key) else {
                throw fail(k, field, "unknown key (allowed: \(keys.joined(separator: ", ")))")
            }
            if let first = seen[key] {
                throw fail(k, field, "duplicate key" + (first.map { " (first on line \($0))" } ?? ""))
            }
            seen[key] = k.mark?.line
            try each(key, v)
        }
    }

    func bool(_ node: Node, at field: String) throws(ConfigError) -> Bool {
        guard case .scalar = node, let b = node.bool else { throw fail(node, field, "must be true or false") }
        return b
    }

    func strings(_ node: Node, at field: String) throws(ConfigError) -> [String] {
        guard case .sequence(let seq) = node else { throw fail(node, field, "must be a list of strings") }
        var out: [String] = []
        for item in seq {
            guard case .scalar(let s) = item, !s.string.isEmpty else { throw fail(item, field, "list items must be non-empty strings") }
            out.append(s.string)
        }
        return out
    }

    func int(_ node: Node, at field: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard case .scalar(let s) = node, let n = Int(s.string), range.contains(n) else {
            throw fail(node, field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// Accepts `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds, in whole milliseconds, up to
    /// `PolicyConfig.Restore.longestDuration`; zero only where `zero` allows it.
    func duration(_ node: Node, at field: String, zero: Bool) throws(ConfigError) -> Duration {
        guard case .scalar(let s) = node else { throw fail(node, field, "must be a duration like 30s") }
        let text = s.string.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let unit = units.first { text.hasSuffix($0.0) }
        let number = unit.map { text.dropLast($0.0.count) } ?? Substring(text)
        // Decimal notation only: Double() also reads hex floats, "inf" and "nan".
        guard !number.isEmpty, number.allSatisfy({ "0123456789.eE+-".contains($0) }), let n = Double(number) else {
            throw fail(node, field, "'\(text)' is not a duration (use e.g. 500ms, 30s, 10m)")
        }
        if n < 0 { throw fail(node, field, "'\(text)' must not be negative") }
        let seconds = n * (unit?.1 ?? 1)
        let longest = PolicyConfig.Restore.longestDuration
        // Checked before converting: a huge value (1e20s) does not fit in Int64 milliseconds and would trap.
        guard seconds.isFinite, seconds <= Double(longest.components.seconds) else {
            throw fail(node, field, "'\(text)' is too long (at most \(longest.components.seconds / 3600)h)")
        }
        let milliseconds = Int64((seconds * 1000).rounded())
        if milliseconds == 0 && !zero {
            throw fail(node, field, "'\(text)' must be at least 1ms (0 would retry in a tight loop)")
        }
        return .milliseconds(milliseconds)
    }
}
