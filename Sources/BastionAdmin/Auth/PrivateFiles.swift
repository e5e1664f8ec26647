import BastionSecurity
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The console's secret files (users, token hashes, the bootstrap token, the first password):
/// written 0600, and on read a file that group or others may read is made private again with a
/// warning — as the broker refuses TLS keys in that state, it never serves a secret others can
/// read.
enum PrivateFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ text: String, to path: String) throws(Failure) {
        do {
            try PKIFiles.write(text, to: path, mode: 0o600, overwrite: true)
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// The file's text, nil when it does not exist.
    static func read(_ path: String, logger: Logger) throws(Failure) -> String? {
        guard PKIFiles.exists(path) else { return nil }
        if let mode = PKIFiles.mode(of: path), mode & 0o077 != 0 {
            guard chmod(path, 0o600) == 0 else {
                throw Failure(description: "\(path) is readable by group or others (mode \(String(mode, radix: 8))) and cannot be fixed; chmod 600 \(path)")
            }
            logger.warning("admin secret file was readable by group or others; made it private (0600)",
                           metadata: ["path": "\(path)", "mode": "\(String(mode, radix: 8))"])
        }
        do {
            return try PKIFiles.readText(path, what: "admin file")
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// A file the operator named (`admin.token_file`): refused, not fixed, when others may read it.
    static func readConfigured(_ path: String) throws(Failure) -> String {
        do {
            try PKIFiles.checkKeyPermissions(path, what: "admin token")
            return try PKIFiles.readText(path, what: "admin token")
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// 20 characters from an alphabet without look-alikes (about 117 bits).
    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// `count` random bytes as unpadded base64url.
    static func randomToken(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
