import BastionCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Prepares the data directory before SQLite touches it: the directory is created with mode
/// 0700 and the database file with 0600 (SQLite gives its -wal and -shm files the database
/// file's mode). Problems are reported as `.unusable` naming the path and a fix.
enum DataDirectory {
    static func prepare(_ options: SQLiteStore.Options) throws(StoreError) {
        let directory = options.directory
        guard !directory.isEmpty else { throw .unusable("the data directory path is empty") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw .unusable("\(directory) exists and is not a directory")
            }
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .unusable("cannot create the data directory \(directory): \(reason(error))")
            }
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw .unusable(
                "the data directory \(directory) is not writable (\(String(cString: strerror(errno)))); "
                    + "fix its owner, permissions or mount")
        }
        let path = options.databasePath
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .unusable(
                "cannot open \(path) for writing (\(String(cString: strerror(errno)))); fix its owner, permissions or mount")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw .unusable("\(path) is not a regular file")
        }
    }

    /// Takes the data directory's lock (`bastion.lock`, flock): one process at a time. Returns
    /// the descriptor that holds it; closing it releases the lock.
    static func lock(_ options: SQLiteStore.Options) throws(StoreError) -> Int32 {
        let path = options.directory + "/bastion.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .unusable("cannot create \(path) (\(String(cString: strerror(errno))))")
        }
        // A lock just released can linger for a moment: a child forked by any thread of this
        // process shares the descriptor until it execs (O_CLOEXEC closes it only then).
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<20 where !locked && errno == EWOULDBLOCK {
            usleep(50_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw .unusable(
                    "\(options.directory) is in use by another broker (\(path) is locked); "
                        + "give each broker its own data directory")
            }
            throw .unusable("cannot lock \(path) (\(String(cString: strerror(code))))")
        }
        return fd
    }

    static func unlock(_ fd: Int32) {
        close(fd)
    }

    /// Whether the database file can be read by others than its owner (reported as a warning).
    static func isExposed(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return info.st_mode & 0o077 != 0
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return nsError.localizedDescription
    }
}
