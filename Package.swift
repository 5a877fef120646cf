// swift-tools-version:6.1
// The layers, bottom up (each target has one job):
//   Micrograd        the scalar autograd engine (Value, Tape, nn)
//   CMicroHTTPD      libmicrohttpd as a system library + shim header (the only C the app sees)
//   HTTPServer       a small request-in/response-out server over CMicroHTTPD; knows nothing of graphs
//   CHiredis         hiredis as a system library + shim header
//   RedisClient      a pooled, circuit-broken Redis client over CHiredis (one file touches the C)
//   MicrogradGraph   graph requests <-> engine: JSON/expression decoding, JSON/DOT/JGF encoding, problems
//   MicrogradService the HTTP app: routes, graph store, metrics, SVG, the page and the spec
//   MicrogradCLI     the `micrograd` executable (serve, eval, healthcheck)
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "micrograd-service",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Micrograd", targets: ["Micrograd"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "MicrogradGraph", targets: ["MicrogradGraph"]),
        .library(name: "MicrogradService", targets: ["MicrogradService"]),
        .executable(name: "micrograd", targets: ["MicrogradCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // MARK: engine
        .target(name: "Micrograd", swiftSettings: strictSwift),

        // Starting a thread without Foundation: the one place that calls pthread_create.
        .target(name: "Threads", swiftSettings: strictSwift),

        // MARK: HTTP
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .target(
            name: "HTTPServer",
            dependencies: [
                "CMicroHTTPD", "Threads",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),

        // Helper process for HTTPServerTests' SIGTERM test (built by `swift build --build-tests` / `swift test`).
        .executableTarget(
            name: "HTTPTestHost",
            dependencies: ["HTTPServer", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),

        // A tiny socket-level HTTP client for tests (hummingbird keeps its testing module apart the same way).
        .target(name: "HTTPTesting", swiftSettings: strictSwift),

        // MARK: Redis (the shared graph store)
        .systemLibrary(
            name: "CHiredis",
            // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM refuses with a warning on every
            // build; the header is at <hiredis/hiredis.h> on the default include path and the module map links it.
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(name: "RedisClient", dependencies: ["CHiredis", "Threads"], swiftSettings: strictSwift),

        // A real redis-server per test (started on a free loopback port, always stopped).
        .target(name: "RedisTesting", dependencies: ["RedisClient"], swiftSettings: strictSwift),

        // MARK: graph API
        .target(name: "MicrogradGraph", dependencies: ["Micrograd", "Threads"], swiftSettings: strictSwift),
        .target(
            name: "MicrogradService",
            dependencies: [
                "Micrograd", "MicrogradGraph", "HTTPServer", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "MicrogradCLI",
            dependencies: [
                "MicrogradService", "MicrogradGraph", "HTTPServer", "Threads",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: benchmarks (release builds, never part of `swift test`)
        .target(
            name: "CTape",
            path: "Benchmarks/CTape",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        .executableTarget(
            name: "EngineBenchmark",
            dependencies: ["Micrograd", "CTape"],
            path: "Benchmarks/EngineBenchmark",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "GraphCodecBenchmark",
            dependencies: ["Micrograd", "MicrogradGraph"],
            path: "Benchmarks/GraphCodecBenchmark",
            swiftSettings: strictSwift
        ),

        // Benchmarks/batch/run: the batched evaluator against batch_tape.c (interleaved, ratios).
        .executableTarget(
            name: "BatchBenchmark",
            dependencies: ["Micrograd"],
            path: "Benchmarks/batch/BatchBenchmark",
            swiftSettings: strictSwift
        ),

        .executableTarget(
            name: "HTTPBenchServer",
            dependencies: ["HTTPServer", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/http/HTTPBenchServer",
            swiftSettings: strictSwift
        ),

        // Benchmarks/service/run's in-process phase timings (decode, evaluate, encode, route) and profiling driver.
        .executableTarget(
            name: "GraphPhaseBenchmark",
            dependencies: ["Micrograd", "MicrogradGraph", "MicrogradService", "HTTPServer"],
            path: "Benchmarks/service/GraphPhaseBenchmark",
            swiftSettings: strictSwift
        ),

        // MARK: fuzzing (scripts/fuzz). Normal builds of the *Fuzzer executables replay a corpus directory;
        // built with -DFUZZING -sanitize=fuzzer they are libFuzzer targets. Corpora: Fuzz/corpus/.
        .target(name: "FuzzEntryPoints", dependencies: ["MicrogradGraph", "Micrograd"], path: "Fuzz/FuzzEntryPoints",
                swiftSettings: strictSwift),
        .executableTarget(name: "DecoderFuzzer", dependencies: ["FuzzEntryPoints"], path: "Fuzz/DecoderFuzzer",
                          swiftSettings: strictSwift),
        .executableTarget(name: "ExpressionFuzzer", dependencies: ["FuzzEntryPoints"], path: "Fuzz/ExpressionFuzzer",
                          swiftSettings: strictSwift),
        .executableTarget(name: "EvaluateFuzzer", dependencies: ["FuzzEntryPoints"], path: "Fuzz/EvaluateFuzzer",
                          swiftSettings: strictSwift),
        .executableTarget(name: "CallFuzzer", dependencies: ["FuzzEntryPoints"], path: "Fuzz/CallFuzzer",
                          swiftSettings: strictSwift),

        // MARK: tests (one per module)
        .testTarget(name: "MicrogradTests", dependencies: ["Micrograd"], swiftSettings: strictSwift),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["HTTPServer", "HTTPTesting", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "RedisTesting"], swiftSettings: strictSwift),
        .testTarget(name: "MicrogradGraphTests", dependencies: ["MicrogradGraph", "Micrograd"], swiftSettings: strictSwift),
        .testTarget(
            name: "MicrogradServiceTests",
            dependencies: [
                "MicrogradService", "HTTPServer", "HTTPTesting", "MicrogradGraph", "Micrograd", "FuzzEntryPoints",
                "RedisClient", "RedisTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "MicrogradCLITests", dependencies: ["MicrogradCLI", "HTTPTesting", "RedisTesting"], swiftSettings: strictSwift),
    ]
)
