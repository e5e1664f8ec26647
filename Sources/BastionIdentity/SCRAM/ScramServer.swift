import BastionSecurity
import MQTTCodec
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The server side of one SCRAM exchange (RFC 5802, RFC 7677), pure: messages in, messages or a
/// verdict out. The stored keys are looked up between the two client messages by the caller;
/// for an unknown user the caller passes made-up keys and `genuine: false`, and everything the
/// client sees — salt, iterations, timing, the final refusal — is what a wrong password gets.
struct ScramServer {
    enum Failure: Equatable {
        /// The data is not SCRAM, or out of order (0x82 Protocol Error).
        case malformed
        /// The proof did not verify, or the user may not authenticate here (0x87 Not authorized).
        case notAuthorized
    }

    enum FirstOutcome: Equatable {
        /// Look up the user's keys, then call `serverFirst`.
        case lookUp(username: String)
        case failure(Failure)
    }

    enum FinalOutcome: Equatable {
        /// Proof verified: send `serverFinal` (`v=…`).
        case success(username: String, serverFinal: [UInt8])
        case failure(Failure)
    }

    private enum State {
        case awaitingClientFirst
        case lookingUp(ScramClientFirst)
        case awaitingClientFinal(ScramClientFirst, keys: ScramStoredKeys, genuine: Bool, serverFirst: String, nonce: String)
        case finished
    }

    let algorithm: ScramAlgorithm
    private var state = State.awaitingClientFirst

    init(algorithm: ScramAlgorithm) { self.algorithm = algorithm }

    /// `expectedUsername`: the CONNECT's user name (or, re-authenticating, the session's);
    /// the SCRAM user must equal it.
    mutating func clientFirst(_ data: [UInt8]?, expectedUsername: String?) -> FirstOutcome {
        guard case .awaitingClientFirst = state, let data else { return fail(.malformed) }
        let message: ScramClientFirst
        do {
            message = try ScramClientFirst(data)
        } catch {
            return fail(error == .authorizationIdentity ? .notAuthorized : .malformed)
        }
        if let expectedUsername, expectedUsername != message.username { return fail(.notAuthorized) }
        state = .lookingUp(message)
        return .lookUp(username: message.username)
    }

    /// The `server-first-message` for these keys; `serverNonce` is fresh randomness.
    mutating func serverFirst(keys: ScramStoredKeys, genuine: Bool, serverNonce: String) -> [UInt8]? {
        guard case .lookingUp(let first) = state else { return nil }
        let nonce = first.nonce + serverNonce
        let message = "r=\(nonce),s=\(Data(keys.salt).base64EncodedString()),i=\(keys.iterations)"
        state = .awaitingClientFinal(first, keys: keys, genuine: genuine, serverFirst: message, nonce: nonce)
        return Array(message.utf8)
    }

    mutating func clientFinal(_ data: [UInt8]?) -> FinalOutcome {
        guard case .awaitingClientFinal(let first, let keys, let genuine, let serverFirst, let nonce) = state, let data else {
            return failFinal(.malformed)
        }
        state = .finished
        let message: ScramClientFinal
        do {
            message = try ScramClientFinal(data)
        } catch {
            return .failure(.malformed)
        }
        guard message.channelBinding == Data(first.gs2Header.utf8).base64EncodedString(), message.nonce == nonce else {
            return .failure(.malformed)
        }
        let authMessage = Array("\(first.bare),\(serverFirst),\(message.withoutProof)".utf8)
        let clientSignature = algorithm.hmac(key: keys.storedKey, authMessage)
        // The same work whatever the proof's length or the user's existence.
        var clientKey = [UInt8](repeating: 0, count: clientSignature.count)
        let proof = message.proof.count == clientSignature.count ? message.proof : clientKey
        for i in 0..<clientKey.count { clientKey[i] = proof[i] ^ clientSignature[i] }
        let verified = constantTimeEqual(algorithm.hash(clientKey), keys.storedKey)
        guard verified, genuine, message.proof.count == clientSignature.count else { return .failure(.notAuthorized) }
        let serverSignature = algorithm.hmac(key: keys.serverKey, authMessage)
        return .success(username: first.username, serverFinal: Array("v=\(Data(serverSignature).base64EncodedString())".utf8))
    }

    private mutating func fail(_ failure: Failure) -> FirstOutcome {
        state = .finished
        return .failure(failure)
    }

    private mutating func failFinal(_ failure: Failure) -> FinalOutcome {
        state = .finished
        return .failure(failure)
    }
}

extension ScramServer.Failure {
    /// Valid in CONNACK and in DISCONNECT (re-authentication) alike.
    var reasonCode: ReasonCode {
        switch self {
        case .malformed: .protocolError
        case .notAuthorized: .notAuthorized
        }
    }
}
