// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "mdevmon",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mdevmon", targets: ["mdevmon"]),
        .executable(name: "mdevmon-bench", targets: ["mdevmon-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // Already in the graph through HummingbirdTLS; the exporter picks each connection's TLS context itself.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        // Already in the graph through SwiftNIO; its persistent hash map lets the index and its published
        // snapshot share every unchanged part.
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        // C libraries, confined: only a few internal files import these.
        .systemLibrary(
            name: "CLibvirt", pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]),
        .systemLibrary(
            name: "CLibXML2", pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(
            name: "CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CMalloc"),

        .target(
            name: "Monitor",
            dependencies: [
                "CLibvirt", "CLibXML2",
                .product(name: "HashTreeCollections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "Systemd",
            dependencies: [
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "Policy",
            dependencies: [
                "Monitor",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),
        .target(
            name: "Exporter",
            dependencies: [
                "Monitor", "CZlib",
                .product(name: "HashTreeCollections", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Every host check, shared by `mdevmon doctor`, the daemon's start-up and SIGHUP runs, the
        // `mdev_host_check` series and the landing page. Above Monitor, Policy and Exporter: none of them knows it.
        .target(
            name: "Doctor",
            dependencies: [
                "Exporter", "Monitor", "Policy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Policy's metrics and landing-page sections, rendered by the Exporter (neither depends on the other).
        .target(
            name: "PolicyExporter",
            dependencies: ["Exporter", "Monitor", "Policy"],
            swiftSettings: strict),
        .executableTarget(
            name: "mdevmon",
            dependencies: [
                "Monitor", "Exporter", "Policy", "PolicyExporter", "Doctor", "Systemd", "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "mdevmon-bench",
            dependencies: [
                "Monitor", "Exporter", "Policy", "PolicyExporter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/mdevmon-bench",
            swiftSettings: strict),

        // Helpers shared by test targets (a real journald, journalctl queries); never shipped.
        .target(
            name: "TestSupport",
            dependencies: [
                "Monitor", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport", swiftSettings: strict),

        .testTarget(
            name: "MonitorTests",
            dependencies: [
                // Exporter and Policy (and PolicyExporter between them) for the golden tests that drive the
                // fake libvirt through the whole pipeline.
                "Monitor", "Exporter", "Policy", "PolicyExporter", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
        .testTarget(
            name: "PolicyTests",
            dependencies: ["Policy", "Monitor", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(
            name: "DoctorTests",
            dependencies: [
                "Doctor", "Monitor", "Policy", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ExporterTests",
            dependencies: [
                "Exporter", "Monitor", "Policy", "PolicyExporter", "TestSupport",
                .product(name: "HashTreeCollections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "SystemdTests",
            dependencies: [
                "Systemd", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Doctor", "Monitor", "Policy", "Systemd", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
    ]
)
