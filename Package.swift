// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Redline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "redlined", targets: ["redlined"]),
        .executable(name: "redlinectl", targets: ["redlinectl"]),
        .executable(name: "redline-sim", targets: ["redline-sim"]),
        .executable(name: "redline-hil", targets: ["redline-hil"]),
        .executable(name: "redline-console", targets: ["redline-console"]),
        .library(name: "RedlineCore", targets: ["RedlineCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // C libraries behind small shims.
        .systemLibrary(
            name: "CModbus", pkgConfig: "libmodbus",
            providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(
            name: "CGPIOD", pkgConfig: "libgpiod",
            providers: [.apt(["libgpiod-dev"])]),

        // Pure model and policy: no I/O, no clocks.
        .target(
            name: "RedlineCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .target(
            name: "RedlineConfig",
            dependencies: ["RedlineSync", "RedlineCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        // The monotonic clock, once: the daemon's (through RedlineIO) and the clients' (RedlineClient).
        .target(name: "RedlineClock", swiftSettings: strict),
        // The lock behind every shared state: Synchronization.Mutex, or a pthread mutex that
        // ThreadSanitizer can see in the sanitizer build (-DREDLINE_TSAN).
        .target(name: "RedlineSync", swiftSettings: strict),
        .target(
            name: "RedlineIO",
            dependencies: [
                "RedlineSync", "RedlineCore", "RedlineClock", "CModbus", "CGPIOD",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "RedlineClient",
            dependencies: ["RedlineCore", "RedlineClock"],
            swiftSettings: strict),
        // The Prometheus text rendering of a `status` answer (swift-prometheus): pure, no I/O.
        .target(
            name: "RedlineMetrics",
            dependencies: ["RedlineCore", .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict),
        .target(
            name: "RedlineDaemon",
            dependencies: [
                "RedlineSync", "RedlineCore", "RedlineConfig", "RedlineIO", "RedlineClock", "RedlineMetrics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Host confinement: the firewall and udev rules generated from a site, and host-check.
        .target(name: "CHostShim"),
        .target(
            name: "RedlineHost",
            dependencies: ["RedlineCore", "RedlineConfig", "CHostShim"],
            swiftSettings: strict),
        // The MCP server for LLM agents, over an RPCTransport (redlinectl mcp serves it on stdio).
        .target(
            name: "RedlineMCP",
            dependencies: ["RedlineCore", "RedlineClient", .product(name: "MCP", package: "swift-sdk")],
            swiftSettings: strict),
        .target(
            name: "RedlineHIL",
            dependencies: ["RedlineCore", "RedlineConfig", "RedlineClient", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        .executableTarget(
            name: "redlined",
            dependencies: [
                "RedlineCore", "RedlineDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // Shipped on a controller: no RedlineHIL (scenario runner, fuzzer). Yams comes in through
        // RedlineConfig (check, firewall, udev-rules and host-check read the site file).
        .executableTarget(
            name: "redlinectl",
            dependencies: [
                "RedlineCore", "RedlineConfig", "RedlineClient", "RedlineHost", "RedlineMCP", "RedlineMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: strict),
        // The operators' web console (issue 16): HTTP lives here, never in the daemon. It talks
        // only to the operator socket, as the operator's own uid.
        .target(
            name: "RedlineConsole",
            dependencies: [
                "RedlineSync", "RedlineCore", "RedlineClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "redline-console",
            dependencies: [
                "RedlineConsole", "RedlineClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // The engineer's and the rig's tool: HIL scenarios, guided proof tests, the adversarial agent.
        .executableTarget(
            name: "redline-hil",
            dependencies: [
                "RedlineCore", "RedlineConfig", "RedlineClient", "RedlineHIL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        // Simulated plant.
        .target(
            name: "PlantModel",
            dependencies: ["RedlineCore"],
            path: "Simulators/PlantModel",
            swiftSettings: strict),
        .executableTarget(
            name: "redline-sim",
            dependencies: [
                "RedlineSync", "PlantModel", "RedlineConfig", "RedlineClient", "CModbus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Simulators/redline-sim",
            swiftSettings: strict),

        // In-VM test driver of the GPIO rig (Simulators/gpio-vm): GPIOBackend against gpio-sim.
        .executableTarget(
            name: "gpio-rig-driver",
            dependencies: [
                "RedlineCore", "RedlineIO",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Simulators/gpio-vm/driver",
            swiftSettings: strict),

        // Benchmarks (executables; never timed assertions in tests).
        .executableTarget(
            name: "redline-bench",
            dependencies: [
                "RedlineCore", "RedlineConfig", "RedlineIO", "RedlineClient", "CModbus", "RedlineTestSupport",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/redline-bench",
            swiftSettings: strict),
        .executableTarget(
            name: "decision-bench",
            dependencies: [
                "RedlineCore", "RedlineClient",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/decision-bench",
            swiftSettings: strict),

        // Fuzzing (issue 15): the oracles, shared by the fuzz targets and FuzzRegressionTests,
        // and one executable per target. Built normally, a fuzz target replays files and folders
        // given as arguments; built by scripts/fuzz.sh (--sanitize=fuzzer -DREDLINE_LIBFUZZER) it is
        // a libFuzzer binary.
        .target(
            name: "RedlineFuzzOracles",
            dependencies: [
                "RedlineCore", "RedlineConfig", "RedlineDaemon", "RedlineHIL",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Fuzz/Oracles",
            swiftSettings: strict),
        .executableTarget(name: "fuzz-json", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/json", swiftSettings: strict),
        .executableTarget(name: "fuzz-rpc-lines", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/rpc-lines", swiftSettings: strict),
        .executableTarget(name: "fuzz-audit-verify", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/audit-verify", swiftSettings: strict),
        .executableTarget(name: "fuzz-modbus-replies", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/modbus-replies", swiftSettings: strict),
        .executableTarget(name: "fuzz-bacnet-replies", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/bacnet-replies", swiftSettings: strict),
        .executableTarget(name: "fuzz-site-yaml", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/site-yaml", swiftSettings: strict),
        .executableTarget(name: "fuzz-scenario-yaml", dependencies: ["RedlineFuzzOracles"], path: "Fuzz/scenario-yaml", swiftSettings: strict),

        // The in-memory plant behind the plant seam (`PlantAccess`), its manual clock, and the
        // daemon in process over them: what NIOEmbedded is to NIO. A library for test targets.
        .target(
            name: "RedlineTesting",
            dependencies: [
                "RedlineSync", "RedlineCore", "RedlineIO", "RedlineDaemon", "PlantModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // Tests: one target per module, plus end-to-end with real processes.
        .target(
            name: "RedlineTestSupport",
            dependencies: ["RedlineSync", "RedlineCore", "RedlineClient", .product(name: "Yams", package: "Yams")],
            path: "Tests/RedlineTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "RedlineCoreTests",
            dependencies: ["RedlineCore", .product(name: "PropertyBased", package: "swift-property-based"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineConfigTests",
            dependencies: ["RedlineConfig", "RedlineCore", .product(name: "PropertyBased", package: "swift-property-based")],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineHostTests",
            dependencies: ["RedlineHost", "RedlineConfig", "RedlineCore"],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineIOTests",
            dependencies: [
                "RedlineSync", "RedlineIO", "RedlineConfig", "RedlineTestSupport", "PlantModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "PlantModelTests",
            dependencies: ["PlantModel", "RedlineConfig"],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineDaemonTests",
            dependencies: [
                "RedlineDaemon", "RedlineTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The daemon's behaviour, effects, approvals, quarantine and the red-team corpus, in
        // process over the memory plant: fast, no root, no sockets.
        .testTarget(
            name: "InProcessTests",
            dependencies: ["RedlineTesting", "RedlineTestSupport", "PlantModel", "RedlineConfig", "RedlineCore", "RedlineIO", "RedlineDaemon"],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineMetricsTests",
            dependencies: ["RedlineMetrics", "RedlineCore"],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineMCPTests",
            dependencies: [
                "RedlineSync", "RedlineMCP", "RedlineClient", "RedlineCore",
                .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "RedlineConsoleTests",
            dependencies: ["RedlineConsole", "RedlineCore"],
            swiftSettings: strict),
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["RedlineFuzzOracles"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "RedlineSync", "RedlineTestSupport", "RedlineClient", "RedlineConfig", "RedlineHIL", "RedlineIO", .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
    ]
)
