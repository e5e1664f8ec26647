/// Errors from loading, issuing and checking certificates, keys and CRLs. Every message names the file
/// (when there is one) and says how to fix the problem, because operators read these at startup.
public struct PKIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        case fileUnreadable
        case fileUnwritable
        case alreadyExists
        case malformed
        case keyPermissions
        case keyMismatch
        case expired
        case notYetValid
        case unsupported
        case notFound
        case invalidArgument
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
