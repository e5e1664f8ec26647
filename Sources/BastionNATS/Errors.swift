/// Errors in bytes received from the server. Any of them ends the connection: the stream can no
/// longer be framed.
public enum NATSProtocolError: Error, Sendable, Hashable {
    case controlLineTooLong(limit: Int)
    case unknownOperation
    case malformedControlLine
    case invalidSize
    case payloadTooLarge(announced: Int, limit: Int)
    case headerSizeExceedsTotal
    case missingCRLF
    case malformedHeaders
    case malformedInfo
}

/// Errors the client reports to its caller.
public enum NATSError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidSubject(String)
    case invalidQueueGroup(String)
    case invalidHeader(String)
    case invalidURL(String)
    case payloadTooLarge(size: Int, limit: Int)
    /// The server does not ask for credentials and `requireAuthentication` is set.
    case serverDoesNotRequireAuthentication(url: String)
    /// The server refused the credentials (its `-ERR` text).
    case authenticationFailed(String)
    case tlsRequiredByClient(url: String)
    case nkeySeedInvalid(String)
    case credentialsUnreadable(path: String)
    case serverError(String)
    case protocolError(NATSProtocolError)
    /// Publishes waiting to be written exceed `maxPendingBytes` (the server or the network is slower
    /// than the publisher).
    case outboundBufferFull(pendingBytes: Int)
    /// Disconnected, and the publishes buffered for the reconnect exceed `reconnectBufferSize`.
    case reconnectBufferFull(pendingBytes: Int)
    case noServersAvailable(lastError: String)
    case connectionClosed
    case staleConnection
    case disconnected
    case timeout
    case noResponders(subject: String)

    public var description: String {
        switch self {
        case .invalidSubject(let s): "invalid subject \(s.debugDescription)"
        case .invalidQueueGroup(let s): "invalid queue group \(s.debugDescription)"
        case .invalidHeader(let s): "invalid header \(s.debugDescription)"
        case .invalidURL(let s): "invalid server URL \(s.debugDescription) (use nats://HOST:PORT or tls://HOST:PORT)"
        case .payloadTooLarge(let size, let limit): "payload of \(size) bytes exceeds the server's max_payload \(limit)"
        case .serverDoesNotRequireAuthentication(let url):
            "server \(url) does not require authentication; refusing to connect (set requireAuthentication = false to allow)"
        case .authenticationFailed(let s): "authentication failed: \(s)"
        case .tlsRequiredByClient(let url): "TLS is required but server \(url) does not offer it"
        case .nkeySeedInvalid(let s): "invalid nkey seed: \(s)"
        case .credentialsUnreadable(let path): "cannot read credentials file \(path)"
        case .serverError(let s): "server error: \(s)"
        case .protocolError(let e): "protocol error: \(e)"
        case .outboundBufferFull(let n): "outbound buffer full (\(n) bytes pending)"
        case .reconnectBufferFull(let n): "disconnected and reconnect buffer full (\(n) bytes pending)"
        case .noServersAvailable(let e): "no server available: \(e)"
        case .connectionClosed: "connection closed"
        case .staleConnection: "stale connection (PINGs not answered)"
        case .disconnected: "disconnected"
        case .timeout: "timed out"
        case .noResponders(let s): "no responders on \(s)"
        }
    }
}
