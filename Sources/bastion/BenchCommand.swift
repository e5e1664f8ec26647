import BastionBench
import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `bastion bench`: an MQTT load generator. Scenarios follow emqtt-bench; the self-contained
/// ones (fanout, fanin, pairs) run both sides and measure end to end.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure an MQTT broker: throughput, end-to-end latency, connection set-up.",
        discussion: """
            Messages are counted where they arrive; latency comes from a send time carried in the \
            payload. Publishers start together, warm up for --warmup seconds, are measured for \
            --duration seconds, and messages still in flight get --drain seconds to arrive.
            """,
        subcommands: [BenchFanout.self, BenchFanin.self, BenchPairs.self, BenchPub.self, BenchSub.self, BenchConn.self]
    )
}

struct BenchFanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout", abstract: "Publishers (default 1) → one topic → every subscriber (default 20).")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.fanout, options) }
}

struct BenchFanin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanin", abstract: "Publishers (default 20), one topic each → subscribers (default 1) of a wildcard.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.fanin, options) }
}

struct BenchPairs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairs", abstract: "--publishers N independent publisher → subscriber pairs (default 10).")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.pairs, options) }
}

struct BenchPub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pub", abstract: "Publishers only (topic: --topic, %i = publisher index).")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.pub, options) }
}

struct BenchSub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sub", abstract: "Subscribers only (filter: --topic); latency when the publisher is `bastion bench pub`.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.sub, options) }
}

struct BenchConn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conn", abstract: "Open --connections at --connect-rate, hold them --duration seconds.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await runBench(.conn, options) }
}

private func runBench(_ scenario: BenchScenarioKind, _ options: BenchOptions) async throws {
    let config: BenchConfiguration
    do {
        config = try options.configuration(for: scenario, runID: String(UInt32.random(in: 0...UInt32.max), radix: 16))
    } catch {
        printError("bastion bench \(scenario.rawValue): \(error.description)")
        throw ExitCode(2)
    }
    let report: BenchReport
    do {
        report = try await BenchRunner(config: config).run()
    } catch {
        printError("bastion bench \(scenario.rawValue): \(error)")
        throw ExitCode(1)
    }
    print(options.json ? report.json() : report.text())
    // Nothing measured is a failure, not a report of zeros.
    let measuredNothing = report.connections.connected == 0
        || (report.setup.publishers > 0 && report.messages.sent == 0)
        || (scenario.isSelfContained && report.messages.received == 0)
    if measuredNothing { throw ExitCode(1) }
}

private func printError(_ message: String) {
    let line = message + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}
