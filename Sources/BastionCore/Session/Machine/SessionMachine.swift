import MQTTCodec
import NIOCore

/// Everything MQTT decides for one client connection, without IO: the phase (which carries the
/// session state once there is one), CONNECT and its acknowledgement, inbound PUBLISH and its
/// acknowledgement order against the store, deliveries towards the client and their
/// acknowledgements, SUBSCRIBE, DISCONNECT, AUTH, and what the end of the connection does to the
/// will and the session. Each event is a method that returns what to do as a value; the
/// connection handler runs it (the only code that writes to the channel). One file per concern:
/// `+Connect`, `+Publish`, `+Acknowledge`, `+Subscribe`, `+Disconnect`, `+Auth`.
public struct SessionMachine {
    public enum Phase {
        case awaitingConnect
        /// CONNECT accepted for checking; waiting for authentication and the session.
        case connecting(Connecting)
        case connected(SessionState)
        /// Closed, the session not yet handed back to the table: inbound bytes are ignored,
        /// deliveries still queue in the session.
        case closing(SessionState)
        /// Closed: inbound bytes are ignored.
        case closed
    }

    /// What a connection in the CONNECT phase holds (out of line: most of a connection's life is
    /// spent connected).
    public final class Connecting {
        public let accepted: AcceptedConnect
        /// Packets that arrived after CONNECT while authentication runs (spec 3.1.4 allows them).
        public var pendingPackets: [MQTTPacket] = []
        /// The session, once attached; CONNACK for a persistent one waits for the store.
        public var state: SessionState?
        public var sessionPresent = false
        /// A running 5.0 enhanced authentication exchange.
        public var exchange: (any AuthenticationExchange)?

        init(_ accepted: AcceptedConnect) { self.accepted = accepted }
    }

    /// Settings that do not change for the life of the connection.
    public struct Configuration: Sendable {
        public var limits: BrokerLimits
        /// `auth.disconnect_on_denied_publish`.
        public var disconnectOnDeniedPublish = false
        /// A durable store is configured: QoS 1/2 towards persistent sessions is stored.
        public var durable = false

        public init(limits: BrokerLimits, disconnectOnDeniedPublish: Bool = false, durable: Bool = false) {
            self.limits = limits
            self.disconnectOnDeniedPublish = disconnectOnDeniedPublish
            self.durable = durable
        }
    }

    public internal(set) var phase: Phase = .awaitingConnect
    public internal(set) var clientID = ""
    public internal(set) var version = ProtocolVersion.v3_1_1
    public internal(set) var client = ClientCapabilities()
    public internal(set) var keepAlive = KeepAlive(seconds: 0)
    public internal(set) var inbound = InboundPublishState(receiveMaximum: 65535, topicAliasMaximum: 0)
    public var acknowledgements = AcknowledgementQueue()
    /// The will from CONNECT, boxed: most clients have none.
    var willBox: WillBox?
    /// The 5.0 authentication method from CONNECT (enhanced authentication and re-authentication).
    public internal(set) var authenticationMethod: String?
    /// Session Expiry Interval from CONNECT (DISCONNECT may not raise it from 0).
    public internal(set) var connectExpiryInterval: UInt32 = 0
    /// The will is not sent: DISCONNECT with a reason other than 0x04, a refused CONNECT, shutdown.
    public internal(set) var willSuppressed = false
    /// The client ended the session with DISCONNECT (it does not count as flapping).
    public internal(set) var cleanDisconnect = false
    public let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    final class WillBox {
        var will: ConnectPacket.Will
        init(_ will: ConnectPacket.Will) { self.will = will }
    }

    public var will: ConnectPacket.Will? { willBox?.will }
    var limits: BrokerLimits { configuration.limits }

    public var isConnected: Bool { if case .connected = phase { true } else { false } }
    public var isClosed: Bool {
        switch phase {
        case .closing, .closed: true
        case .awaitingConnect, .connecting, .connected: false
        }
    }
    public var isAwaitingConnect: Bool { if case .awaitingConnect = phase { true } else { false } }
    public var connecting: Connecting? { if case .connecting(let c) = phase { c } else { nil } }

    /// The session state while the connection holds it (connected, or attached while connecting).
    public var state: SessionState? {
        switch phase {
        case .connected(let state), .closing(let state): state
        case .connecting(let c): c.state
        case .awaitingConnect, .closed: nil
        }
    }

    /// Runs `body` on the session state, if the connection holds one. The phase lets go of its
    /// copy first, so the state is mutated in place (no copy of its collections).
    @discardableResult
    public mutating func withState<R>(_ body: (inout SessionState) -> R) -> R? {
        switch phase {
        case .connected(var state):
            phase = .closed
            defer { phase = .connected(state) }
            return body(&state)
        case .closing(var state):
            phase = .closed
            defer { phase = .closing(state) }
            return body(&state)
        case .connecting(let c):
            guard c.state != nil else { return nil }
            return body(&c.state!)
        case .awaitingConnect, .closed:
            return nil
        }
    }

    /// The connection is closing: nothing more is processed. A session it holds stays with it
    /// (`.closing`) until `connectionEnded` hands it back.
    public mutating func close() {
        if let held = state { phase = .closing(held) } else { phase = .closed }
    }

    /// Takes the session state out of the machine, which is closed from here on.
    mutating func takeState() -> SessionState? {
        let held = state
        phase = .closed
        return held
    }

    /// Closing for a reason that must not send the will (refused CONNECT, shutdown).
    public mutating func suppressWill() { willSuppressed = true }

    /// How many QoS 1/2 deliveries may be unacknowledged towards the client.
    public var outboundWindow: Int {
        version == .v5 ? min(client.receiveMaximum, limits.maximumInflight) : limits.maximumInflight
    }
}

/// What a packet means in the current phase.
public enum PacketDispatch: Sendable {
    /// Handle it (the phase allows it).
    case handle(MQTTPacket)
    /// Kept until the session is attached.
    case deferred
    /// A protocol violation: 5.0 DISCONNECT with the reason, then close. `beforeConnect` marks
    /// evidence of an attack (bytes before any valid CONNECT).
    case violation(ReasonCode, String, beforeConnect: Bool)
    /// The connection is closing: ignore it.
    case ignore
}

extension SessionMachine {
    /// Sorts an inbound packet by phase (spec 3.1: CONNECT first and once; 3.1.4: packets after
    /// CONNECT wait for CONNACK; direction rules).
    public mutating func received(_ packet: MQTTPacket) -> PacketDispatch {
        switch phase {
        case .awaitingConnect:
            guard case .connect = packet else { return .violation(.protocolError, "first packet must be CONNECT", beforeConnect: true) }
            return .handle(packet)
        case .connecting(let c):
            if case .auth = packet { return .handle(packet) }
            // Bounded so a client cannot park unbounded work behind a slow authentication.
            guard c.pendingPackets.count < limits.maximumInflight + 16 else {
                return .violation(.receiveMaximumExceeded, "too many packets before CONNACK", beforeConnect: false)
            }
            c.pendingPackets.append(packet)
            return .deferred
        case .connected:
            switch packet {
            case .connect: return .violation(.protocolError, "second CONNECT", beforeConnect: false)
            case .connack, .suback, .unsuback, .pingresp:
                return .violation(.protocolError, "\(packet.type) is sent only by servers", beforeConnect: false)
            default: return .handle(packet)
            }
        case .closing, .closed:
            return .ignore
        }
    }

    /// Packets that arrived between CONNECT and CONNACK, to handle now that the session is up.
    public mutating func takePendingPackets() -> [MQTTPacket] {
        guard let c = connecting else { return [] }
        defer { c.pendingPackets = [] }
        return c.pendingPackets
    }
}
