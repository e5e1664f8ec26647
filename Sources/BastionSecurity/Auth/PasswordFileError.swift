/// A password file problem. `source` is `FILE:LINE` (or `FILE` when no line applies); the message
/// never contains a password, a hash or the offending line's text.
public struct PasswordFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}
