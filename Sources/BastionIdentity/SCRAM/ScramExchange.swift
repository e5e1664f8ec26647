import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore

/// One SCRAM exchange on a connection's event loop (MQTT 5.0 enhanced authentication, spec
/// 4.12): CONNECT (or AUTH 0x19) carries the client-first message and gets AUTH 0x18 with the
/// server-first message; the client's AUTH 0x18 carries the proof and gets CONNACK (or AUTH
/// 0x00) with the server signature. Credential lookups run as tasks off the loop; the state
/// changes on the loop.
final class ScramExchange: AuthenticationExchange {
    private var server: ScramServer
    private let configuration: ScramAuthenticator.Configuration
    private let clientID: String
    private let expectedUsername: String?
    /// The store that found the user's keys; asked for its grant after the proof.
    private var source: (any ScramCredentialSource)?

    init(algorithm: ScramAlgorithm, configuration: ScramAuthenticator.Configuration, clientID: String, expectedUsername: String?) {
        self.server = ScramServer(algorithm: algorithm)
        self.configuration = configuration
        self.clientID = clientID
        self.expectedUsername = expectedUsername
    }

    private enum Phase {
        case first, lookingUp, final, done
    }

    private var phase = Phase.first

    func step(clientData: ByteBuffer?, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationStep> {
        let data = clientData.map { Array($0.readableBytesView) }
        switch phase {
        case .first:
            switch server.clientFirst(data, expectedUsername: expectedUsername) {
            case .failure(let failure):
                phase = .done
                return eventLoop.makeSucceededFuture(.failure(failure.reasonCode))
            case .lookUp(let username):
                phase = .lookingUp
                return lookUp(username, on: eventLoop)
            }
        case .final:
            phase = .done
            switch server.clientFinal(data) {
            case .failure(let failure):
                return eventLoop.makeSucceededFuture(.failure(failure.reasonCode))
            case .success(let username, let serverFinal):
                return finish(username: username, serverFinal: serverFinal, on: eventLoop)
            }
        case .lookingUp, .done:
            phase = .done
            return eventLoop.makeSucceededFuture(.failure(.protocolError))
        }
    }

    private func lookUp(_ username: String, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationStep> {
        let algorithm = server.algorithm
        let configuration = self.configuration
        let found = eventLoop.makeFutureWithTask { await configuration.lookUp(username: username, algorithm: algorithm) }
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        return found.map { result -> AuthenticationStep in
            let exchange = loopBound.value
            let keys: ScramStoredKeys
            var genuine = false
            switch result {
            case .found(let foundKeys, let store):
                keys = foundKeys
                genuine = true
                exchange.source = store
            case .unknown:
                keys = configuration.fakeKeys(username: username, algorithm: algorithm)
            case .unavailable:
                exchange.phase = .done
                return .failure(.serverBusy)
            }
            guard let message = exchange.server.serverFirst(keys: keys, genuine: genuine, serverNonce: ScramAuthenticator.makeNonce()) else {
                exchange.phase = .done
                return .failure(.protocolError)
            }
            exchange.phase = .final
            return .continue(ByteBuffer(bytes: message))
        }
    }

    private func finish(username: String, serverFinal: [UInt8], on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationStep> {
        guard let source else { return eventLoop.makeSucceededFuture(.failure(.notAuthorized)) }
        let clientID = self.clientID
        let configuration = self.configuration
        return eventLoop.makeFutureWithTask { () async -> AuthenticationStep in
            switch await configuration.grant(from: source, username: username, clientID: clientID) {
            case .allow(let grant):
                let identity = ClientIdentity(
                    clientID: clientID, username: grant.username ?? username, backendRules: grant.rules ?? [],
                    hasBackendACL: grant.rules != nil, backendRoles: grant.roles, clientIDBoundByBackend: grant.clientIDBound)
                return .success(identity, ByteBuffer(bytes: serverFinal))
            case .deny, .noOpinion:
                return .failure(.notAuthorized)
            case .unavailable:
                return .failure(.serverBusy)
            }
        }
    }
}
