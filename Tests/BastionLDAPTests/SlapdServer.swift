import BastionLDAP
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Testing

/// An OpenLDAP server for one suite, started and stopped through scripts/test-servers/slapd.sh
/// on free loopback ports in a temporary folder, with a test PKI from the same script.
struct SlapdServer: Sendable {
    let directory: URL
    let port: Int
    let certificates: URL

    var ldapURL: LDAPURL { LDAPURL(scheme: .ldap, host: "127.0.0.1", port: port) }
    var ldapsURL: LDAPURL { LDAPURL(scheme: .ldaps, host: "127.0.0.1", port: port + 1) }
    var caFile: String { certificates.appendingPathComponent("ca.pem").path }
    var otherCAFile: String { certificates.appendingPathComponent("other-ca.pem").path }
    var localhostCertificateFile: String { certificates.appendingPathComponent("localhost.pem").path }
    var localhostKeyFile: String { certificates.appendingPathComponent("localhost.key").path }
    var clientCertificateFile: String { certificates.appendingPathComponent("client.pem").path }
    var clientKeyFile: String { certificates.appendingPathComponent("client.key").path }

    static let suffix = "dc=bastion,dc=test"
    static func userDN(_ uid: String) -> String { "uid=\(uid),ou=people,\(suffix)" }

    @TaskLocal static var current: SlapdServer?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let script: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/test-servers/slapd.sh")

    static func start() async throws -> SlapdServer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/slapd") else {
            throw Failure(description: "slapd is not installed: these tests need a real OpenLDAP server. Install it with `apt-get install -y slapd ldap-utils` (./scripts/test does this).")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-slapd-\(UUID().uuidString)")
        let certificates = root.appendingPathComponent("pki")
        let directory = root.appendingPathComponent("server")
        try await run(["certs", certificates.path])
        // Another test can still bind the port between the check and slapd's bind: try again then.
        var attempt = 0
        while true {
            attempt += 1
            let port = try await freePortPair()
            let server = SlapdServer(directory: directory, port: port, certificates: certificates)
            do {
                try await run(["start", directory.path, String(port),
                               certificates.appendingPathComponent("server.pem").path,
                               certificates.appendingPathComponent("server.key").path,
                               server.caFile])
                return server
            } catch {
                guard attempt < 5 else { throw Failure(description: "port \(port), attempt \(attempt): \(error)") }
                try? FileManager.default.removeItem(at: directory)
            }
        }
    }

    func stop() async {
        _ = try? await Self.run(["stop", directory.path])
        try? FileManager.default.removeItem(at: directory.deletingLastPathComponent())
    }

    /// Runs the script with a bound on its run time; its stderr becomes the error.
    ///
    /// Spawned directly rather than through Foundation's Process: the child must start with no
    /// signals blocked or ignored (slapd outlives the script and must obey SIGTERM, and threads
    /// of this process block signals), and its output goes to files, since a pipe that slapd
    /// inherited would never reach its end.
    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("slapd-sh-\(UUID().uuidString)")
        let outPath = scratch.path + ".out", errPath = scratch.path + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let pid = try spawn(["/bin/bash", script.path] + arguments, stdout: outPath, stderr: errPath)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(180))
            kill(pid, SIGKILL)
        }
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            // A blocking wait, on a thread of its own: test code only.
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        watchdog.cancel()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let exitCode = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        guard exitCode == 0 else {
            throw Failure(description: "slapd.sh \(arguments.first ?? "") failed (\(exitCode)): \(err)")
        }
        return out
    }

    private static func spawn(_ argv: [String], stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal: Int32 in 1..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArguments = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw Failure(description: "cannot start \(argv[0]): error \(result)") }
        return pid
    }

    /// A port P with P and P+1 free on 127.0.0.1 (plain and ldaps listeners), below the kernel's
    /// ephemeral range (32768 and up on Linux) and apart from nats.sh's (25000 and up): a port picked there can be taken by any outgoing
    /// connection or port-0 listener of the tests running in parallel before slapd binds it.
    static func freePortPair() async throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20000..<24999)
            guard let first = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get() else { continue }
            let second = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port + 1).get()
            try await first.close()
            if let second {
                try await second.close()
                return port
            }
        }
        throw Failure(description: "no free pair of loopback ports")
    }
}

/// Starts one slapd around a whole suite and stops it afterwards.
struct SlapdTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await SlapdServer.start()
        do {
            try await SlapdServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == SlapdTrait {
    static var slapd: Self { Self() }
}

/// The suite's server; fails the test when the suite did not start one.
func slapd() throws -> SlapdServer {
    try #require(SlapdServer.current, "the suite needs the .slapd trait")
}
