import ArgumentParser
import BastionSecurity
import Foundation

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check and read JSON Lines audit logs.",
        discussion: "The record schema is documented in docs/audit-log.md.",
        subcommands: [Validate.self, Tail.self])
}

extension Audit {
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every record of audit log files against the schema.",
            discussion: "Exit status: 0 all records valid (and every --expect event present), 1 otherwise, 2 unreadable file.")

        @Argument(help: "Audit log files.")
        var files: [String]

        @Option(name: .long, help: "An event that must appear at least once (repeatable).")
        var expect: [String] = []

        func run() async throws {
            var records = 0
            var invalid = 0
            var seen: [String: Int] = [:]
            for file in files {
                guard let handle = FileHandle(forReadingAtPath: file) else {
                    FileHandle.standardError.write(Data("bastion audit: cannot read \(file)\n".utf8))
                    throw ExitCode(2)
                }
                defer { try? handle.close() }
                var number = 0
                try forEachLine(handle) { line in
                    number += 1
                    guard !line.isEmpty else {
                        invalid += 1
                        print("\(file):\(number): empty line")
                        return
                    }
                    records += 1
                    let problems = AuditSchema.validate(line: line)
                    if problems.isEmpty {
                        if let event = eventName(line) { seen[event, default: 0] += 1 }
                    } else {
                        invalid += 1
                        for problem in problems { print("\(file):\(number): \(problem)") }
                    }
                }
            }
            let missing = expect.filter { seen[$0] == nil }
            for event in missing { print("no '\(event)' record") }
            let summary = seen.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            print("\(records) records, \(invalid) invalid\(summary.isEmpty ? "" : ": " + summary)")
            if invalid > 0 || !missing.isEmpty { throw ExitCode(1) }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the last records of an audit log, optionally following it.")

        @Argument(help: "Audit log file.")
        var file: String

        @Option(name: [.customShort("n"), .long], help: "Records to print.")
        var lines = 10

        @Option(name: .long, help: "Only records of these events (repeatable).")
        var event: [String] = []

        @Flag(name: [.short, .long], help: "Keep printing records as they are written (follows rotation).")
        var follow = false

        func run() async throws {
            guard let handle = FileHandle(forReadingAtPath: file) else {
                FileHandle.standardError.write(Data("bastion audit: cannot read \(file)\n".utf8))
                throw ExitCode(2)
            }
            var last: [String] = []
            try forEachLine(handle) { line in
                guard matches(line) else { return }
                last.append(line)
                if last.count > max(0, lines) { last.removeFirst(last.count - max(0, lines)) }
            }
            for line in last { print(line) }
            guard follow else { return }
            var current = handle
            var offset = (try? current.offset()) ?? 0
            var pending = Data()
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(500))
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) ?? nil
                if let size, size < offset, let reopened = FileHandle(forReadingAtPath: file) {
                    // Rotated or truncated: start over with the new file.
                    try? current.close()
                    current = reopened
                    offset = 0
                    pending = Data()
                }
                guard let chunk = try current.readToEnd(), !chunk.isEmpty else { continue }
                offset += UInt64(chunk.count)
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if matches(line) { print(line) }
                }
                fflush(nil)
            }
        }

        func matches(_ line: String) -> Bool {
            event.isEmpty || eventName(line).map(event.contains) ?? false
        }
    }
}

/// The `event` of a record (nil when the line is not a JSON object with one).
private func eventName(_ line: String) -> String? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
    return object["event"] as? String
}

/// Calls `body` with each line (without its newline), reading in chunks.
private func forEachLine(_ handle: FileHandle, _ body: (String) throws -> Void) throws {
    var pending = Data()
    while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
        pending.append(chunk)
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            try body(String(decoding: pending[start..<newline], as: UTF8.self))
            start = pending.index(after: newline)
        }
        pending = Data(pending[start...])
    }
    if !pending.isEmpty { try body(String(decoding: pending, as: UTF8.self)) }
}
