import MQTTCodec
import NIOCore

/// MQTT 5.0 enhanced authentication (spec 4.12): CONNECT with an Authentication Method, then AUTH
/// packets until the method succeeds or fails; AUTH 0x19 re-authenticates a connected client.
/// Methods plug in here; with none configured, CONNECT naming a method gets CONNACK 0x8C.
public protocol EnhancedAuthenticator: Sendable {
    /// Whether this authenticator implements `method` (e.g. "SCRAM-SHA-256").
    func supports(method: String) -> Bool
    /// Starts an exchange for a connection; the returned exchange lives on that connection's loop.
    /// `username` is the CONNECT's user name field, when it has one.
    func begin(method: String, clientID: String, username: String?, connection: ConnectionInfo) -> any AuthenticationExchange
}

public enum AuthenticationStep: Sendable, Equatable {
    /// Send AUTH 0x18 with this data and wait for the client's next AUTH.
    case `continue`(ByteBuffer?)
    /// Done: the client is this identity (optional final data goes in CONNACK / AUTH 0x00).
    case success(ClientIdentity, ByteBuffer?)
    case failure(ReasonCode)
}

/// One authentication exchange, used on its connection's event loop only: fed the client's data,
/// it answers with the next step. A step may need
/// a lookup (stored keys in a database), so it completes on `eventLoop` when ready.
public protocol AuthenticationExchange: AnyObject {
    func step(clientData: ByteBuffer?, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationStep>
}
