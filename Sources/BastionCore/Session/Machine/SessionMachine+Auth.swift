import MQTTCodec
import NIOCore

/// AUTH (spec 3.15, 4.12): continues the CONNECT exchange, or starts (0x19) and continues a
/// re-authentication. Without a method from CONNECT, AUTH is a protocol error.
extension SessionMachine {
    public enum AuthAction: Sendable, Equatable {
        /// Feed the data to the running exchange.
        case continueExchange(ByteBuffer?)
        /// Start a re-authentication exchange with the CONNECT's method, then feed it the data.
        case reauthenticate(method: String, ByteBuffer?)
        case violation(ReasonCode, String)
    }

    /// An AUTH packet. `exchangeRunning`: an exchange is in progress.
    public func authReceived(_ packet: AuthPacket, exchangeRunning: Bool) -> AuthAction {
        guard let method = authenticationMethod, packet.properties.authenticationMethod == method else {
            return .violation(.protocolError, "AUTH without the authentication method of CONNECT")
        }
        switch packet.reasonCode {
        case .continueAuthentication:
            guard exchangeRunning else { return .violation(.protocolError, "AUTH 0x18 with no exchange running") }
            return .continueExchange(packet.properties.authenticationData)
        case .reAuthenticate where isConnected && !exchangeRunning:
            return .reauthenticate(method: method, packet.properties.authenticationData)
        default:
            return .violation(.protocolError, "unexpected AUTH \(packet.reasonCode)")
        }
    }

    public enum StepAction: Sendable, Equatable {
        /// Send AUTH 0x18 with this packet's data.
        case send(AuthPacket)
        /// The CONNECT exchange succeeded: admit this identity, then attach (`data` goes in CONNACK).
        case authenticated(ClientIdentity, finalData: ByteBuffer?)
        /// Re-authentication succeeded: send AUTH 0x00.
        case reauthenticated(AuthPacket)
        /// CONNECT exchange failed: refuse with this reason.
        case refuse(ReasonCode)
        /// Re-authentication failed: DISCONNECT with this reason.
        case disconnect(ReasonCode)
    }

    /// What one step of an exchange means in the current phase.
    public func authStep(_ step: AuthenticationStep) -> StepAction {
        var properties = AuthProperties()
        properties.authenticationMethod = authenticationMethod
        switch step {
        case .continue(let data):
            properties.authenticationData = data
            return .send(AuthPacket(reasonCode: .continueAuthentication, properties: properties))
        case .success(let identity, let data):
            if connecting != nil { return .authenticated(identity, finalData: data) }
            properties.authenticationData = data
            return .reauthenticated(AuthPacket(reasonCode: .success, properties: properties))
        case .failure(let reason):
            return connecting != nil ? .refuse(reason) : .disconnect(reason)
        }
    }
}
