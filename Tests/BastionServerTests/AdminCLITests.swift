import BastionAdmin
import BastionSecurity
import BastionServer
import Foundation
import Testing

/// `bastion ban` and `bastion audit` as operators run them: the built binary against a live admin
/// listener and a real audit file. Skipped when the binary has not been built.
@Suite struct AdminCLITests {
    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/bastion").path

    static var built: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary without blocking a concurrency thread (the admin server under test needs
    /// them): output goes to files, the exit is awaited through the termination handler.
    static func bastion(_ arguments: [String]) async throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out")
        let errURL = dir.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        return Result(status: status, stdout: try String(contentsOf: outURL, encoding: .utf8),
                      stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    @Test(.enabled(if: built, "build the bastion binary first")) func banCommandManagesBansOnARunningServer() async throws {
        let bans = BanList()
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-admin-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let server = try AdminServer(configuration: AdminConfiguration(scheme: .http, host: "127.0.0.1", port: 0, dataDirectory: dataDir),
                                     control: StubControl(bans: bans), announce: { _ in })
        let task = Task { try await server.run() }
        defer { task.cancel() }
        let port = try #require(await server.waitUntilBound())
        let admin = ["--admin", "http://127.0.0.1:\(port)", "--data-dir", dataDir]
        let refused = try await Self.bastion(["ban", "list", "--admin", "http://127.0.0.1:\(port)", "--data-dir", dataDir + "/none"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("401"))

        let added = try await Self.bastion(["ban", "add", "--ip", "192.0.2.0/24", "--duration", "15m", "--reason", "scanner"] + admin)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.hasPrefix("banned cidr 192.0.2.0/24 until "))
        #expect(bans.isBanned(ip: IPAddress("192.0.2.77")!)?.note == "scanner")
        let user = try await Self.bastion(["ban", "add", "--user", "mallory"] + admin)
        #expect(user.status == 0, "\(user.stderr)")

        let table = try await Self.bastion(["ban", "list"] + admin)
        #expect(table.status == 0)
        #expect(table.stdout.contains("cidr      192.0.2.0/24"))
        #expect(table.stdout.contains("username  mallory"))
        let json = try await Self.bastion(["ban", "list", "--json"] + admin)
        let listed = try JSONDecoder().decode([BanAPI.Ban].self, from: Data(json.stdout.utf8))
        #expect(Set(listed.map(\.value)) == ["192.0.2.0/24", "mallory"])

        let removed = try await Self.bastion(["ban", "remove", "--ip", "192.0.2.0/24"] + admin)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(bans.isBanned(ip: IPAddress("192.0.2.77")!) == nil)
        let again = try await Self.bastion(["ban", "remove", "--ip", "192.0.2.0/24"] + admin)
        #expect(again.status == 1)
        #expect(again.stderr.contains("404"))

        #expect(try await Self.bastion(["ban", "add"] + admin).status == 2)
        #expect(try await Self.bastion(["ban", "add", "--ip", "1.2.3.4", "--user", "x"] + admin).status == 2)
        #expect(try await Self.bastion(["ban", "add", "--ip", "1.2.3.4", "--duration", "soon"] + admin).status == 2)
        #expect(try await Self.bastion(["ban", "list", "--admin", "ftp://x"]).status == 2)
        task.cancel()
        _ = try? await task.value
    }

    @Test(.enabled(if: built, "build the bastion binary first")) func banCommandFailsCleanlyWithoutABroker() async throws {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let result = try await Self.bastion(["ban", "list", "--admin", "http://127.0.0.1:9"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot connect"))
    }

    @Test(.enabled(if: built, "build the bastion binary first")) func auditValidateChecksEveryLine() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        let log = try AuditLog(AuditSinkConfiguration(path: path))
        log.record(.started(.init(version: "t", listeners: ["mqtt://127.0.0.1:1883"], configPath: nil, pid: 1)))
        log.record(.authFailure(.init(peer: AuditPeer(listener: "l", remoteAddress: "127.0.0.1:5"), clientID: "c", username: "u", reason: .badPassword)))
        log.record(.shutdown(.init(cause: .signal, uptimeSeconds: 1)))
        await log.close()

        let ok = try await Self.bastion(["audit", "validate", path, "--expect", "start", "--expect", "auth_failure"])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("3 records, 0 invalid"))
        let missing = try await Self.bastion(["audit", "validate", path, "--expect", "ban"])
        #expect(missing.status == 1)

        let tail = try await Self.bastion(["audit", "tail", "-n", "1", "--event", "auth_failure", path])
        #expect(tail.status == 0)
        #expect(tail.stdout.split(separator: "\n").count == 1)
        #expect(tail.stdout.contains(#""event":"auth_failure""#))

        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"ts\":\"x\",\"event\":\"start\"}\n".utf8))
        try handle.close()
        let bad = try await Self.bastion(["audit", "validate", path])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("audit.log:4:"))
        #expect(try await Self.bastion(["audit", "validate", dir.appendingPathComponent("none").path]).status == 2)
    }
}
