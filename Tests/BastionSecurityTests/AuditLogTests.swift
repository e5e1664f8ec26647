@testable import BastionSecurity
import Foundation
import Testing

@Suite struct AuditLogTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func writesOneValidJSONLinePerRecord() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        let log = try AuditLog(AuditSinkConfiguration(path: path), clock: { 1_714_566_896_789 })
        for event in AuditSamples.all { log.record(event) }
        await log.flush()
        let written = try lines(path)
        #expect(written.count == AuditSamples.all.count)
        for line in written { #expect(AuditSchema.validate(line: line) == []) }
        #expect(written.first?.hasPrefix(#"{"ts":"2024-05-01T12:34:56.789Z","event":"start""#) == true)
        await log.close()
        #expect(log.writtenCount == AuditSamples.all.count)
    }

    @Test func appendsToAnExistingFile() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        for _ in 0..<2 {
            let log = try AuditLog(AuditSinkConfiguration(path: path), clock: { 0 })
            log.record(.recordsDropped(count: 1))
            await log.close()
        }
        #expect(try lines(path).count == 2)
    }

    @Test func rotatesBySizeAndKeepsMaxFiles() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        var config = AuditSinkConfiguration(path: path)
        let lineSize = AuditRecord(timestamp: 0, event: .recordsDropped(count: 1)).jsonLine().count
        config.maximumFileBytes = lineSize * 3
        config.maximumFiles = 2
        let log = try AuditLog(config, clock: { 0 })
        for _ in 0..<10 { log.record(.recordsDropped(count: 1)) }
        await log.close()
        // 10 lines, 3 per file: the current file holds the last 1, .1 and .2 hold 3 each, .3 is gone.
        #expect(try lines(path).count == 1)
        #expect(try lines(path + ".1").count == 3)
        #expect(try lines(path + ".2").count == 3)
        #expect(!FileManager.default.fileExists(atPath: path + ".3"))
        for file in [path, path + ".1", path + ".2"] {
            let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
            #expect(size <= lineSize * 3)
        }
    }

    @Test func aFullQueueDropsAndCountsAndSaysSo() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        var config = AuditSinkConfiguration(path: path)
        config.queueCapacity = 5
        let log = try AuditLog(config, clock: { 0 }, paused: true)
        for _ in 0..<12 { log.record(.shutdown(.init(cause: .signal, uptimeSeconds: 1))) }
        #expect(log.droppedCount == 7)
        log.startWriter()
        await log.close()
        let written = try lines(path)
        #expect(written.count == 6)
        #expect(written.first == #"{"ts":"1970-01-01T00:00:00.000Z","event":"audit_dropped","count":7}"#)
    }

    @Test func recordsAfterCloseAreIgnored() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("audit.log").path
        let log = try AuditLog(AuditSinkConfiguration(path: path), clock: { 0 })
        log.record(.recordsDropped(count: 1))
        await log.close()
        log.record(.recordsDropped(count: 2))
        await log.flush()
        await log.close()
        #expect(try lines(path).count == 1)
    }

    @Test func anUnwritablePathFailsAtStartup() {
        #expect(throws: AuditLogError.self) {
            _ = try AuditLog(AuditSinkConfiguration(path: "/nonexistent-dir/audit.log"))
        }
    }

    @Test func aDisabledLogRecordsNothing() async {
        let log = AuditLog.disabled
        log.record(.recordsDropped(count: 1))
        await log.flush()
        #expect(!log.isEnabled)
        #expect(log.writtenCount == 0)
    }
}
