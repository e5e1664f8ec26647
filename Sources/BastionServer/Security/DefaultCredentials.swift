import BastionSecurity
import Foundation
import Logging

/// The embedded default requires authentication, so on first start it creates a password file in
/// the data directory with one user, `admin`, and a random password it prints once. Later starts
/// reuse the file.
enum DefaultCredentials {
    static let username = "admin"

    /// Returns the password file path to use, creating it if needed.
    static func ensure(dataDir: String, logger: Logger) throws(ConfigError) -> String {
        let path = (dataDir as NSString).appendingPathComponent("passwd")
        if FileManager.default.fileExists(atPath: path) { return path }
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigError(key: "persistence.data_dir", "cannot create \(dataDir): \(error.localizedDescription)")
        }
        let password = randomPassword()
        var file = PasswordFile(source: path)
        do {
            _ = try file.setPassword(password, for: username)
            try file.write(to: path)
        } catch {
            throw ConfigError(key: "persistence.data_dir", "cannot create \(path): \(error)")
        }
        let banner = """

            Bastion created \(path) with one user:
                user name: \(username)
                password:  \(password)
            It is shown only now. Change it with: bastion passwd \(path) \(username)

            """
        FileHandle.standardError.write(Data(banner.utf8))
        logger.notice("created the default password file", metadata: ["path": "\(path)", "user": "\(username)"])
        return path
    }

    private static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
