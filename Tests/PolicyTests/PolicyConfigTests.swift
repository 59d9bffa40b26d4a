import Foundation
import Policy
import Testing

@Suite struct PolicyConfigTests {
    static let fullExample = """
        # mdevmon policy configuration
        dry_run: true
        ownership:
          parents: [pci_0000_3b_00_0, pci_0000_af_00_0]
          mdev_types:
            - nvidia-63
          uuids: ["8A3F0C1E-1111-4222-8333-944455556666"]
          exclude_uuids: [0b1c2d3e-aaaa-4bbb-8ccc-dddddddddddd]
        policies:
          restore:
            enabled: false
            recreate_transient: true
            wait_for_type: false
            autostart_grace_period: 45s
            retry_initial: 250ms
            retry_max: 5m
            deadline: 1h
          domain_references:
            enabled: false
        """

    func parse(_ yaml: String) throws(ConfigError) -> PolicyConfig {
        try PolicyConfig.parse(yaml, file: "x.yaml")
    }

    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try parse(yaml)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaults() {
        let c = PolicyConfig()
        #expect(!c.dryRun)
        #expect(c.ownership == PolicyConfig.Ownership())
        #expect(c.restore.enabled && !c.restore.recreateTransient && c.restore.waitForType)
        #expect(c.restore.autostartGracePeriod == .seconds(30))
        #expect(c.restore.retryInitial == .seconds(1))
        #expect(c.restore.retryMax == .seconds(60))
        #expect(c.restore.deadline == .seconds(600))
        #expect(c.domainReferences.enabled)
        #expect(c.needsWriteAccess)
    }

    @Test func missingDefaultPathMeansDefaults() throws {
        let path = NSTemporaryDirectory() + "mdevmon-missing-\(UUID().uuidString).yaml"
        #expect(try PolicyConfig.load(path: path, isDefaultPath: true) == PolicyConfig())
    }

    @Test func missingExplicitPathIsAnError() {
        let path = NSTemporaryDirectory() + "mdevmon-missing-\(UUID().uuidString).yaml"
        let error = #expect(throws: ConfigError.self) { try PolicyConfig.load(path: path, isDefaultPath: false) }
        #expect(error?.description == "config \(path): (file): does not exist")
    }

    @Test func devNullMeansDefaults() throws {
        #expect(try PolicyConfig.load(path: "/dev/null", isDefaultPath: false) == PolicyConfig())
    }

    /// The OS's reason is in the error (a directory here; root reads any mode, so not a permission).
    @Test func unreadablePathNamesTheReason() {
        let error = #expect(throws: ConfigError.self) {
            try PolicyConfig.load(path: NSTemporaryDirectory(), isDefaultPath: false)
        }
        #expect(error?.description == "config \(NSTemporaryDirectory()): (file): cannot be read: Is a directory")
    }

    @Test func emptyFileMeansDefaults() throws {
        #expect(try parse("") == PolicyConfig())
        #expect(try parse("# only a comment\n") == PolicyConfig())
    }

    @Test func fullValidExample() throws {
        let c = try parse(Self.fullExample)
        #expect(c.dryRun)
        #expect(c.ownership.parents == ["pci_0000_3b_00_0", "pci_0000_af_00_0"])
        #expect(c.ownership.mdevTypes == ["nvidia-63"])
        #expect(c.ownership.uuids == ["8A3F0C1E-1111-4222-8333-944455556666"])
        #expect(c.ownership.excludeUUIDs == ["0b1c2d3e-aaaa-4bbb-8ccc-dddddddddddd"])
        #expect(!c.restore.enabled)
        #expect(c.restore.recreateTransient && !c.restore.waitForType)
        #expect(c.restore.autostartGracePeriod == .seconds(45))
        #expect(c.restore.retryInitial == .milliseconds(250))
        #expect(c.restore.retryMax == .seconds(300))
        #expect(c.restore.deadline == .seconds(3600))
        #expect(!c.domainReferences.enabled)
        #expect(!c.needsWriteAccess)
    }

    @Test func loadsAFile() throws {
        let path = NSTemporaryDirectory() + "mdevmon-\(UUID().uuidString).yaml"
        try Data(Self.fullExample.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try PolicyConfig.load(path: path, isDefaultPath: false) == parse(Self.fullExample))
        #expect(try PolicyConfig.load(path: path, isDefaultPath: true) == parse(Self.fullExample))
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("2", .seconds(2)),
        ("1.5s", .milliseconds(1500)),
        ("0", .zero),
    ])
    func durations(text: String, expected: Duration) throws {
        let c = try parse("policies:\n  restore:\n    deadline: \(text)\n")
        #expect(c.restore.deadline == expected)
    }

    @Test func unknownKeyNamesLineAndDottedField() {
        let yaml = """
            dry_run: false
            policies:
              restore:
                retry_maxx: 10s
            """
        #expect(error(yaml)?.description ==
            "config x.yaml:4: policies.restore.retry_maxx: unknown key (allowed: enabled, recreate_transient, autostart_grace_period, retry_initial, retry_max, deadline, max_concurrent, wait_for_type)")
    }

    @Test func unknownTopLevelAndNestedKeys() {
        let top = error("dry_run: true\nownershp: {}\n")
        #expect(top?.line == 2)
        #expect(top?.field == "ownershp")
        #expect(top?.problem == "unknown key (allowed: dry_run, ownership, policies)")

        let nested = error("ownership:\n  parents: []\n  uuid: [a]\n")
        #expect(nested?.line == 3)
        #expect(nested?.field == "ownership.uuid")

        let refs = error("policies:\n  domain_references:\n    enable: true\n")
        #expect(refs?.line == 3)
        #expect(refs?.field == "policies.domain_references.enable")
    }

    @Test(arguments: [
        // (yaml, line, field, problem contains)
        ("dry_run: maybe\n", 1, "dry_run", "must be true or false"),
        ("policies:\n  restore:\n    enabled: [true]\n", 3, "policies.restore.enabled", "must be true or false"),
        ("policies:\n  domain_references:\n    enabled: 3\n", 3, "policies.domain_references.enabled", "must be true or false"),
        ("ownership:\n  uuids: abc\n", 2, "ownership.uuids", "must be a list of strings"),
        ("ownership:\n  parents:\n    - pci_0000_3b_00_0\n    - {a: b}\n", 4, "ownership.parents", "list items must be non-empty strings"),
        ("policies:\n  restore:\n    retry_max: soon\n", 3, "policies.restore.retry_max", "'soon' is not a duration"),
        ("policies:\n  restore:\n    deadline: -5s\n", 3, "policies.restore.deadline", "'-5s' must not be negative"),
        ("policies:\n  restore:\n    retry_initial: [1s]\n", 3, "policies.restore.retry_initial", "must be a duration"),
        ("ownership: [a]\n", 1, "ownership", "must be a mapping"),
        ("policies:\n  restore: true\n", 2, "policies.restore", "must be a mapping"),
    ])
    func wrongTypesNameFieldAndLine(yaml: String, line: Int, field: String, problem: String) throws {
        let e = try #require(error(yaml))
        #expect(e.file == "x.yaml")
        #expect(e.line == line)
        #expect(e.field == field)
        #expect(e.problem.contains(problem), "\(e)")
        #expect(e.description.hasPrefix("config x.yaml:\(line): \(field): "))
    }

    @Test(arguments: [
        // (yaml, line of the repeat, field, line of the first)
        ("dry_run: true\npolicies: {}\ndry_run: false\n", 3, "dry_run", 1),
        ("policies:\n  restore:\n    retry_max: 1m\n    deadline: 5m\n    retry_max: 2m\n", 5, "policies.restore.retry_max", 3),
        ("ownership:\n  parents: [a]\n  parents: [b]\n", 3, "ownership.parents", 2),
        ("policies: {domain_references: {enabled: true, enabled: false}}\n", 1, "policies.domain_references.enabled", 1),
    ])
    func duplicateKeysAreAnErrorNamingLineAndField(yaml: String, line: Int, field: String, first: Int) throws {
        let e = try #require(error(yaml))
        #expect(e.line == line)
        #expect(e.field == field)
        #expect(e.problem == "duplicate key (first on line \(first))")
        #expect(e.description == "config x.yaml:\(line): \(field): duplicate key (first on line \(first))")
    }

    @Test func sameKeyInDifferentMappingsIsNoDuplicate() throws {
        let c = try parse("policies:\n  restore:\n    enabled: false\n  domain_references:\n    enabled: false\n")
        #expect(!c.restore.enabled && !c.domainReferences.enabled)
    }

    @Test func topLevelMustBeAMapping() {
        let e = error("- a\n- b\n")
        #expect(e?.field == "(top level)")
        #expect(e?.problem == "must be a mapping")
    }

    @Test func badYAMLSyntaxNamesALine() throws {
        let e = try #require(error("dry_run: true\nownership:\n  parents: [a, b\npolicies: {}\n"))
        #expect(e.field == "(yaml)")
        let line = try #require(e.line)
        #expect((3...4).contains(line), "\(e)")
        #expect(e.description.hasPrefix("config x.yaml:\(line): (yaml): "))

        let tabs = try #require(error("dry_run: true\n\tpolicies: {}\n"))
        #expect(tabs.field == "(yaml)")
        #expect(tabs.line == 2, "\(tabs)")
    }

    @Test func retryInitialMustNotExceedRetryMax() {
        let e = error("policies:\n  restore:\n    retry_initial: 2m\n    retry_max: 1m\n")
        #expect(e?.line == 3)
        #expect(e?.field == "policies.restore.retry_initial")
        #expect(e?.problem == "must not exceed retry_max (60.0 seconds)")

        // Only retry_max written, below the default retry_initial: the error names what was written.
        let alone = error("policies:\n  restore:\n    retry_max: 500ms\n")
        #expect(alone?.line == 3)
        #expect(alone?.field == "policies.restore.retry_max")
        #expect(alone?.problem == "must not be less than retry_initial (1.0 seconds, the default)")
    }

    /// A zero retry delay retries in a tight loop; a zero grace period (start at once) and a zero
    /// deadline (try once) mean something. Nothing may be negative.
    @Test(arguments: [
        // (field, value, accepted)
        ("retry_initial", "0s", false), ("retry_initial", "0", false), ("retry_initial", "0.0004s", false),
        ("retry_initial", "1ms", true),
        ("retry_max", "0ms", false), ("retry_max", "-1s", false),
        ("autostart_grace_period", "0s", true), ("autostart_grace_period", "-1ms", false),
        ("deadline", "0", true), ("deadline", "-0.5h", false),
    ])
    func zeroAndNegativeDurations(field: String, value: String, accepted: Bool) throws {
        let yaml = "policies:\n  restore:\n    \(field): \(value)\n"
        let e = error(yaml)
        #expect((e == nil) == accepted, "\(field): \(value) → \(e.map(String.init(describing:)) ?? "accepted")")
        if let e {
            #expect(e.line == 3 && e.field == "policies.restore.\(field)")
            #expect(e.problem.contains("'\(value)'"), "\(e)")
        }
    }

    /// A value too large for Int64 milliseconds trapped the conversion and killed the daemon (on SIGHUP
    /// too, where an invalid file must keep the old configuration).
    @Test(arguments: [
        "1e20s", "1e20", "99999999999999999999ms", "1e400h", "1.8e16s", "169h", "10081m", "604801s",
    ])
    func hugeDurationIsAnErrorNamingLineAndField(value: String) throws {
        for field in ["autostart_grace_period", "retry_initial", "retry_max", "deadline"] {
            let e = try #require(error("dry_run: true\npolicies:\n  restore:\n    \(field): \(value)\n"))
            #expect(e.description == "config x.yaml:4: policies.restore.\(field): '\(value)' is too long (at most 168h)")
        }
    }

    @Test func longestDurationIsAccepted() throws {
        let c = try parse("policies:\n  restore:\n    retry_max: 168h\n    deadline: 604800s\n    autostart_grace_period: 10080m\n")
        #expect(c.restore.retryMax == .seconds(604_800) && c.restore.deadline == .seconds(604_800))
        #expect(c.restore.autostartGracePeriod == PolicyConfig.Restore.longestDuration)
    }

    /// Hex floats, infinities and NaN parse as Double but are no durations.
    @Test(arguments: ["0x10s", "infs", "inf", "nan", "NaNms", "1_000s", "s", "ms", ""])
    func onlyDecimalDurations(value: String) throws {
        let e = try #require(error("policies:\n  restore:\n    deadline: \(value)\n"))
        #expect(e.field == "policies.restore.deadline" && e.line == 3)
        #expect(e.problem.contains("is not a duration"), "\(e)")
    }

    @Test(arguments: [
        ("0", false), ("-3", false), ("65", false), ("99999999999999999999", false), ("4.5", false), ("1e3", false),
        ("1", true), ("64", true),
    ])
    func maxConcurrentIsBounded(value: String, accepted: Bool) throws {
        let e = error("policies:\n  restore:\n    max_concurrent: \(value)\n")
        #expect((e == nil) == accepted)
        if let e { #expect(e.description == "config x.yaml:3: policies.restore.max_concurrent: must be a whole number from 1 to 64") }
    }

    @Test func invalidFileOnDiskNamesThePath() throws {
        let path = NSTemporaryDirectory() + "mdevmon-\(UUID().uuidString).yaml"
        try Data("dry_run: 7\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = #expect(throws: ConfigError.self) { try PolicyConfig.load(path: path, isDefaultPath: true) }
        #expect(e?.description == "config \(path):1: dry_run: must be true or false")
    }
}
