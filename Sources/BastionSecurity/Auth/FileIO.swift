#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the security files need: read as UTF-8, and replace atomically with a
/// given mode. POSIX calls directly, so the mode is set before any byte is written.
enum FileIO {
    struct Failure: Error, CustomStringConvertible {
        var operation: String
        var code: Int32
        var description: String {
            "\(operation): \(String(cString: strerror(code)))"
        }
    }

    /// Files larger than this are refused (a password or ACL file is a few hundred kB at most).
    static let maximumSize = 64 * 1024 * 1024

    static func readText(_ path: String) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", code: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read", code: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= maximumSize else { throw Failure(operation: "read (file too large)", code: EFBIG) }
        }
        // Invalid UTF-8 becomes U+FFFD rather than an error; the parsers then reject what is odd.
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to a temporary file next to `path` (created 0600 or `mode`), fsyncs it, and
    /// renames it over `path`; if `path` is a symlink, its target is replaced.
    static func writeAtomically(_ text: String, to path: String, mode: mode_t) throws(Failure) {
        let target = resolvedPath(path)
        let directory: String
        if let slash = target.lastIndex(of: "/") {
            directory = slash == target.startIndex ? "/" : String(target[..<slash])
        } else {
            directory = "."
        }
        let base = target.split(separator: "/").last.map(String.init) ?? target
        var template = Array("\(directory)/.\(base).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Failure(operation: "create temporary file in \(directory)", code: errno) }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var success = false
        defer {
            if !success { unlink(temporary) }
        }
        guard fchmod(fd, mode) == 0 else {
            let code = errno
            close(fd)
            throw Failure(operation: "chmod", code: code)
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw Failure(operation: "write", code: code)
            }
            bytes = bytes.dropFirst(written)
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            throw Failure(operation: "fsync", code: code)
        }
        guard close(fd) == 0 else { throw Failure(operation: "close", code: errno) }
        guard rename(temporary, target) == 0 else { throw Failure(operation: "rename", code: errno) }
        success = true
        // Make the rename itself durable.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    private static func resolvedPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
