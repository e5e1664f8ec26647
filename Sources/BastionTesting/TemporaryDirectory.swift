import Foundation

/// A directory of its own under the system's temporary directory, removed with everything in it
/// when the value goes away (or earlier, by `cleanup()`).
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "bastion-test") throws {
        path = FileManager.default.temporaryDirectory.path + "/\(prefix)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name`, readable by the owner only (as secrets are kept).
    public func write(_ name: String, _ text: String) {
        let file = file(name)
        FileManager.default.createFile(atPath: file, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    }

    /// The names in the directory, sorted.
    public func entries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    deinit { cleanup() }
}
