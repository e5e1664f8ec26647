// swift-tools-version:6.1
// Micro benchmarks with allocation counts. Run from this directory:
//   swift package benchmark                     # run and print
//   swift package benchmark thresholds check    # fail (exit 2) when counts exceed Thresholds/
import PackageDescription

let package = Package(
    name: "BastionBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Bastion", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MQTTCodec", package: "Bastion"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RoutingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BastionCore", package: "Bastion"),
                .product(name: "MQTTCodec", package: "Bastion"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/RoutingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SecurityBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BastionSecurity", package: "Bastion"),
            ],
            path: "Benchmarks/SecurityBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
