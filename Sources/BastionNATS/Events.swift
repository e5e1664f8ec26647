/// What happens to a connection, for logging and health reporting.
public enum NATSEvent: Sendable, Hashable {
    case connected(NATSServerURL)
    case disconnected(String)
    case reconnected(NATSServerURL)
    /// A subscription dropped messages because its consumer fell behind its pending limits
    /// (reported once per episode: again only after its queue drained).
    case slowConsumer(sid: UInt64)
    /// An `-ERR` from the server (permissions violations leave the connection open; others close it).
    case serverError(String)
    /// The server is shutting down gracefully; the client will be moved to another server.
    case lameDuck(NATSServerURL)
    /// The connection gave up (closed by the caller, or reconnect attempts exhausted).
    case closed
}
