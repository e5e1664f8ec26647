@testable import BastionNATS
import Foundation
import Testing

/// nats-server instances for integration tests, run by `scripts/test-servers/nats.sh` (loopback,
/// JetStream, data in a temporary folder, a watchdog that stops them after a while whatever
/// happens to the test). A missing nats-server fails the test with the install command.
struct ScriptError: Error, CustomStringConvertible {
    var description: String
}

enum TestServerScript {
    static let path: String = {
        // Tests/BastionNATSTests/TestServers.swift → repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("scripts/test-servers/nats.sh").path
    }()

    /// Runs the script without blocking a task thread while it waits for the server. Output goes
    /// to files, not pipes: the servers it starts in the background inherit the descriptors, and a
    /// pipe would not reach end-of-file before they exit.
    static func run(_ arguments: [String]) async throws -> String {
        let base = NSTemporaryDirectory() + "nats-sh-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: base + ".out", contents: nil)
        FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let status = try await spawnAndWait(["/bin/bash", path] + arguments, stdout: base + ".out", stderr: base + ".err")
        let stdout = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw ScriptError(description: "nats.sh \(arguments.first ?? "") failed (\(status)): \(stderr)")
        }
        return stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// posix_spawn and a blocking waitpid on a thread of its own: Foundation's Process does not
    /// reap its child in this test process, and a task thread must not block.
    static func spawnAndWait(_ argv: [String], stdout: String, stderr: String) async throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard result == 0 else { throw ScriptError(description: "posix_spawn failed: \(result)") }
        let child = pid
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) == -1, errno == EINTR {}
                // WEXITSTATUS, or 128 + signal.
                let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                continuation.resume(returning: code)
            }
            thread.start()
        }
    }

    static func temporaryDirectory(_ label: String) -> String {
        let dir = NSTemporaryDirectory() + "bastion-nats-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

struct TestServer: Sendable {
    static let user = "bastion"
    static let password = "bastion-test"

    let directory: String
    let port: Int
    var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts a server; `options` are nats.sh start options (default: user/password auth).
    static func start(_ options: [String] = []) async throws -> TestServer {
        let dir = TestServerScript.temporaryDirectory("single")
        let output = try await TestServerScript.run(["start", dir, "0", "--ttl", "300"] + options)
        guard let port = Int(output.split(separator: "\n").last ?? "") else { throw ScriptError(description: "no port in \(output)") }
        return TestServer(directory: dir, port: port)
    }

    func stop() async {
        _ = try? await TestServerScript.run(["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    func kill() async throws { _ = try await TestServerScript.run(["kill", directory]) }
    func restart() async throws { _ = try await TestServerScript.run(["restart", directory]) }

    func configuration(authentication: NATSAuthentication? = nil) -> NATSConfiguration {
        var config = try! NATSConfiguration(urls: [url], authentication: authentication ?? .userPassword(user: Self.user, password: Self.password))
        config.reconnectWait = .milliseconds(100)
        config.reconnectWaitMax = .milliseconds(500)
        config.connectTimeout = .seconds(3)
        return config
    }
}

struct TestCluster: Sendable {
    let directory: String
    let ports: [Int]
    var urls: [String] { ports.map { "nats://127.0.0.1:\($0)" } }

    static func start() async throws -> TestCluster {
        let dir = TestServerScript.temporaryDirectory("cluster")
        let output = try await TestServerScript.run(["cluster-start", dir, "--ttl", "300"])
        let ports = (output.split(separator: "\n").last ?? "").split(separator: " ").compactMap { Int($0) }
        guard ports.count == 3 else { throw ScriptError(description: "no ports in \(output)") }
        return TestCluster(directory: dir, ports: ports)
    }

    func node(_ index: Int) -> String { "\(directory)/n\(index + 1)" }
    func kill(_ index: Int) async throws { _ = try await TestServerScript.run(["kill", node(index)]) }
    func restart(_ index: Int) async throws { _ = try await TestServerScript.run(["restart", node(index)]) }

    func stop() async {
        _ = try? await TestServerScript.run(["cluster-stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    func configuration(_ indices: [Int]? = nil) -> NATSConfiguration {
        let chosen = (indices ?? [0, 1, 2]).map { urls[$0] }
        var config = try! NATSConfiguration(urls: chosen, authentication: .userPassword(user: TestServer.user, password: TestServer.password))
        config.reconnectWait = .milliseconds(100)
        config.reconnectWaitMax = .milliseconds(500)
        config.connectTimeout = .seconds(3)
        config.pingInterval = .seconds(1)
        return config
    }
}

/// Runs `body` with a fresh server and stops it afterwards, also when `body` throws.
func withServer<T>(_ options: [String] = [], _ body: (TestServer) async throws -> T) async throws -> T {
    let server = try await TestServer.start(options)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

func withCluster<T>(_ body: (TestCluster) async throws -> T) async throws -> T {
    let cluster = try await TestCluster.start()
    do {
        let result = try await body(cluster)
        await cluster.stop()
        return result
    } catch {
        await cluster.stop()
        throw error
    }
}

func withConnection<T>(_ configuration: NATSConfiguration, _ body: (NATSConnection) async throws -> T) async throws -> T {
    let connection = try await NATSConnection.connect(configuration)
    do {
        let result = try await body(connection)
        try? await connection.close()
        return result
    } catch {
        try? await connection.close()
        throw error
    }
}

/// Retries `body` until it succeeds or `timeout` passes (a bound, not an expectation on timing):
/// JetStream needs a moment to elect leaders after a cluster starts or loses a node.
func eventually<T>(timeout: Duration = .seconds(30), _ body: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            return try await body()
        } catch {
            if ContinuousClock.now >= deadline { throw error }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
