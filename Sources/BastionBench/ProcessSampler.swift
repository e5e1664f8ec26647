#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Resident memory and CPU time of a process, read from Linux's /proc (the broker under test, or
/// the generator itself). Elsewhere every reading is nil.
struct ProcessSample: Sendable, Equatable {
    var rssKiB: Int
    var cpuSeconds: Double

    static func read(pid: Int32) -> ProcessSample? {
        guard let status = readFile("/proc/\(pid)/status"), let stat = readFile("/proc/\(pid)/stat"),
              let rss = parseRSSKiB(status: status), let ticks = parseCPUTicks(stat: stat)
        else { return nil }
        return ProcessSample(rssKiB: rss, cpuSeconds: Double(ticks) / Double(clockTicksPerSecond))
    }

    static func readSelf() -> ProcessSample? { read(pid: getpid()) }

    /// `VmRSS:   12345 kB` from /proc/PID/status.
    static func parseRSSKiB(status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2 else { return nil }
            return Int(fields[1])
        }
        return nil
    }

    /// utime + stime (fields 14 and 15) from /proc/PID/stat. The command name (field 2) may
    /// contain spaces, so fields are counted after its closing parenthesis.
    static func parseCPUTicks(stat: String) -> Int? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let rest = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // rest[0] is field 3 (state), so field N is rest[N - 3].
        guard rest.count > 12, let user = Int(rest[11]), let system = Int(rest[12]) else { return nil }
        return user + system
    }

    private static var clockTicksPerSecond: Int {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? ticks : 100
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
