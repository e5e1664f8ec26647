/// A CONNECT for a client id another connection holds (spec 3.1.4): the old connection gets
/// DISCONNECT 0x8E (5.0), closes and hands the session back; then the new one attaches. Only the
/// owning identity (or one sharing with it) may take over; the session table refuses anyone else.
public enum Takeover {
    /// Attempts before giving up: two clients fighting over one id could otherwise loop forever.
    public static let maximumAttempts = 3

    public enum Step: Sendable, Equatable {
        /// Ask the old connection to let go, then try to attach again.
        case displace(attempt: Int)
        /// Refuse the newcomer: 0x89 server busy.
        case giveUp
    }

    public static func next(after attempt: Int) -> Step {
        attempt < maximumAttempts ? .displace(attempt: attempt + 1) : .giveUp
    }

    /// The old connection's DISCONNECT reason string.
    public static func reason(clientID: String) -> String { "another connection uses client id \(clientID)" }
}
