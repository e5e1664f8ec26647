import BastionSecurity
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files that hold secrets the operator names (password hashes, shared JWT secrets, backend
/// passwords): one that group or others may read is made private (0600) with a warning, as the
/// broker refuses TLS keys in that state. One that cannot be fixed (owned by someone else) is
/// refused when everyone may read it, and only warned about when its group may.
enum SecretFiles {
    private static let logger = Logger(label: "bastion")

    static func makePrivate(_ path: String, key: String) throws(ConfigError) {
        guard let mode = PKIFiles.mode(of: path), mode & 0o077 != 0 else { return }
        let octal = String(mode, radix: 8)
        if chmod(path, 0o600) == 0 {
            logger.warning("secret file was readable by group or others; made it private (0600)",
                           metadata: ["path": "\(path)", "mode": "\(octal)", "setting": "\(key)"])
            return
        }
        if mode & 0o007 != 0 {
            throw ConfigError(key: key, "\(path) is readable by others (mode \(octal)) and cannot be made private",
                              fix: "chmod 600 \(path) (or 640 with the broker's group)")
        }
        logger.warning("secret file is readable by its group", metadata: ["path": "\(path)", "mode": "\(octal)", "setting": "\(key)"])
    }
}
