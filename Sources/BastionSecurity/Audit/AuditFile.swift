#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The audit file with size-based rotation: when the next line would take the file past
/// `maximumBytes`, FILE becomes FILE.1, FILE.1 becomes FILE.2, … and the oldest beyond
/// `maximumFiles` is removed. Used only by the audit writer thread.
struct AuditFile: Sendable {
    let path: String
    let maximumBytes: Int
    let maximumFiles: Int
    private(set) var fd: Int32
    private(set) var size: Int

    init(path: String, maximumBytes: Int, maximumFiles: Int) throws(AuditLogError) {
        self.path = path
        self.maximumBytes = max(0, maximumBytes)
        self.maximumFiles = max(0, min(maximumFiles, 1000))
        (fd, size) = try Self.open(path)
    }

    private static func open(_ path: String) throws(AuditLogError) -> (Int32, Int) {
        let fd = Glibc_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw AuditLogError(description: "cannot open audit log \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        return (fd, size)
    }

    mutating func append(_ lines: [[UInt8]]) throws(AuditLogError) {
        var buffer: [UInt8] = []
        for line in lines {
            if maximumBytes > 0, size + buffer.count > 0, size + buffer.count + line.count > maximumBytes {
                try flush(&buffer)
                try rotate()
            }
            buffer.append(contentsOf: line)
        }
        try flush(&buffer)
    }

    private mutating func flush(_ buffer: inout [UInt8]) throws(AuditLogError) {
        guard !buffer.isEmpty else { return }
        if let problem = Self.writeAll(fd: fd, buffer) {
            throw AuditLogError(description: "cannot write audit log \(path): \(problem)")
        }
        size += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    private mutating func rotate() throws(AuditLogError) {
        _ = Glibc_close(fd)
        if maximumFiles == 0 {
            unlink(path)
        } else {
            unlink("\(path).\(maximumFiles)")
            var i = maximumFiles - 1
            while i >= 1 {
                rename("\(path).\(i)", "\(path).\(i + 1)")
                i -= 1
            }
            rename(path, "\(path).1")
        }
        (fd, size) = try Self.open(path)
    }

    func close() {
        _ = Glibc_close(fd)
    }

    /// Writes all of `bytes`, retrying partial writes and EINTR; nil on success, else the error.
    static func writeAll(fd: Int32, _ bytes: [UInt8]) -> String? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return write(fd, base + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            offset += n
        }
        return nil
    }
}

// The C functions, named apart from this file's `open`/`close` methods.
private func Glibc_open(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func Glibc_close(_ fd: Int32) -> Int32 { close(fd) }
