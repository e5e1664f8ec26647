import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// File IO for PEM material. Key files are created with mode 0600 from the start (never chmod'ed after
/// the fact) and every write goes through a temporary file and `rename`, so a crash never leaves a
/// half-written key or CRL behind.
public enum PKIFiles {
    /// Mode for private keys.
    public static let keyMode: mode_t = 0o600
    /// Mode for certificates, CRLs and the index: world-readable is fine, they are public.
    public static let publicMode: mode_t = 0o644

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    public static func read(_ path: String, what: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw PKIError(.fileUnreadable, "cannot read \(what) file \(path): \(errnoText())")
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PKIError(.fileUnreadable, "cannot read \(what) file \(path): \(errnoText())")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            // Certificate material is small; refuse to slurp something that clearly is not one.
            if result.count > 16 * 1024 * 1024 {
                throw PKIError(.malformed, "\(what) file \(path) is larger than 16 MiB; is it the right file?")
            }
        }
        return result
    }

    public static func readText(_ path: String, what: String) throws -> String {
        let bytes = try read(path, what: what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PKIError(.malformed, "\(what) file \(path) is not PEM text")
        }
        return text
    }

    /// All certificates of a PEM file, in file order. Non-certificate blocks are an error so that a key
    /// pasted into a certificate file is noticed.
    public static func readCertificates(_ path: String, what: String) throws -> [Certificate] {
        let text = try readText(path, what: what)
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw PKIError(.malformed, "\(what) file \(path) is not valid PEM: \(error)")
        }
        guard !documents.isEmpty else {
            throw PKIError(.malformed, "\(what) file \(path) contains no PEM certificate")
        }
        return try documents.enumerated().map { index, document in
            guard document.discriminator == "CERTIFICATE" else {
                throw PKIError(
                    .malformed,
                    "\(what) file \(path): PEM block \(index + 1) is a \(document.discriminator), expected a CERTIFICATE"
                )
            }
            do {
                return try Certificate(derEncoded: document.derBytes)
            } catch {
                throw PKIError(.malformed, "\(what) file \(path): certificate \(index + 1) cannot be parsed: \(error)")
            }
        }
    }

    public static func readPrivateKey(_ path: String, what: String = "key") throws -> Certificate.PrivateKey {
        let text = try readText(path, what: what)
        do {
            return try Certificate.PrivateKey(pemEncoded: text)
        } catch {
            throw PKIError(
                .malformed,
                "\(what) file \(path) holds no usable private key (PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\", unencrypted): \(error)"
            )
        }
    }

    /// The file's permission bits, or nil when it cannot be stat'ed.
    public static func mode(of path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Refuses a private key file that group or others may read.
    public static func checkKeyPermissions(_ path: String, what: String = "key") throws {
        guard let mode = mode(of: path) else {
            throw PKIError(.fileUnreadable, "cannot read \(what) file \(path): \(errnoText())")
        }
        if mode & 0o044 != 0 {
            throw PKIError(
                .keyPermissions,
                "\(what) file \(path) is readable by group or others (mode \(String(mode, radix: 8))); fix: chmod 600 \(path)"
            )
        }
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Creates `path` (and parents) if missing; a newly created last component gets `mode`.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw PKIError(.fileUnwritable, "\(path) exists and is not a directory")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, !exists(parent) {
            try makeDirectory(parent, mode: 0o755)
        }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw PKIError(.fileUnwritable, "cannot create directory \(path): \(errnoText())")
        }
    }

    /// Atomically writes `bytes` to `path` with `mode`. With `overwrite == false` an existing file is an
    /// error, so `certs init` never clobbers a CA.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t, overwrite: Bool) throws {
        if !overwrite, exists(path) {
            throw PKIError(.alreadyExists, "\(path) already exists; refusing to overwrite it")
        }
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw PKIError(.fileUnwritable, "cannot write \(temporary): \(errnoText())")
        }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            // umask may have removed bits; never add any beyond `mode`.
            _ = fchmod(fd, mode)
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PKIError(.fileUnwritable, "cannot write \(path): \(errnoText())")
                }
                offset += n
            }
            if fsync(fd) != 0 {
                throw PKIError(.fileUnwritable, "cannot write \(path): \(errnoText())")
            }
        }
        guard rename(temporary, path) == 0 else {
            throw PKIError(.fileUnwritable, "cannot write \(path): \(errnoText())")
        }
        ok = true
    }

    public static func write(_ text: String, to path: String, mode: mode_t, overwrite: Bool) throws {
        try write(Array(text.utf8), to: path, mode: mode, overwrite: overwrite)
    }
}

// `read` and `write` are shadowed by the static methods above.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
