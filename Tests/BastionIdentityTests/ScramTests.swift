import BastionCore
@testable import BastionIdentity
import BastionSecurity
import Foundation
import MQTTCodec
import NIOCore
import Testing

/// The client side, as a device would compute it.
struct ScramClient: Sendable {
    let algorithm: ScramAlgorithm
    let username: String
    let password: String
    let nonce: String
    var bare: String { "n=\(ScramClientFirst.encodeSaslName(username)),r=\(nonce)" }
    var first: String { "n,,\(bare)" }

    init(_ algorithm: ScramAlgorithm = .sha256, username: String, password: String, nonce: String = "clientnonce123") {
        self.algorithm = algorithm
        self.username = username
        self.password = password
        self.nonce = nonce
    }

    /// The final message for the server's first message, and the server signature to expect.
    func final(for serverFirst: String) -> (message: String, serverSignature: String)? {
        var fields: [String: String] = [:]
        for part in serverFirst.split(separator: ",") { fields[String(part.prefix(1))] = String(part.dropFirst(2)) }
        guard let combined = fields["r"], let saltText = fields["s"], let salt = Data(base64Encoded: saltText),
              let iterations = fields["i"].flatMap(Int.init), let salted = algorithm.saltedPassword(Array(password.utf8), salt: Array(salt), iterations: iterations)
        else { return nil }
        let withoutProof = "c=biws,r=\(combined)"
        let authMessage = Array("\(bare),\(serverFirst),\(withoutProof)".utf8)
        let clientKey = algorithm.hmac(key: salted, Array("Client Key".utf8))
        let signature = algorithm.hmac(key: algorithm.hash(clientKey), authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        let serverKey = algorithm.hmac(key: salted, Array("Server Key".utf8))
        let serverSignature = algorithm.hmac(key: serverKey, authMessage)
        return ("\(withoutProof),p=\(Data(proof).base64EncodedString())", "v=\(Data(serverSignature).base64EncodedString())")
    }
}

@Suite struct ScramServerTests {
    /// RFC 7677 §3.
    @Test func rfc7677Example() throws {
        let salt = try #require(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ=="))
        let derived = ScramStoredKeys.derive(password: Array("pencil".utf8), algorithm: .sha256, iterations: 4096, salt: Array(salt))
        let keys = try #require(derived)
        var server = ScramServer(algorithm: .sha256)
        let started = server.clientFirst(Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8), expectedUsername: nil)
        #expect(started == .lookUp(username: "user"))
        let produced = server.serverFirst(keys: keys, genuine: true, serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
        let first = try #require(produced)
        #expect(String(decoding: first, as: UTF8.self) == "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        let final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        let outcome = server.clientFinal(Array(final.utf8))
        #expect(outcome == .success(username: "user", serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)))
    }

    func exchange(_ client: ScramClient, keys: ScramStoredKeys, genuine: Bool = true, expected: String? = nil) -> ScramServer.FinalOutcome {
        var server = ScramServer(algorithm: client.algorithm)
        guard case .lookUp = server.clientFirst(Array(client.first.utf8), expectedUsername: expected),
              let first = server.serverFirst(keys: keys, genuine: genuine, serverNonce: "servernonce"),
              let final = client.final(for: String(decoding: first, as: UTF8.self))
        else { return .failure(.malformed) }
        return server.clientFinal(Array(final.message.utf8))
    }

    @Test func bothMechanismsVerifyTheRightPasswordOnly() throws {
        for algorithm in ScramAlgorithm.allCases {
            let keys = try #require(ScramStoredKeys.derive(password: Array("s3cret".utf8), algorithm: algorithm, iterations: 4096))
            let good = ScramClient(algorithm, username: "dev,=1", password: "s3cret")
            guard case .success(let name, let serverFinal) = exchange(good, keys: keys) else {
                Issue.record("\(algorithm) should succeed")
                continue
            }
            #expect(name == "dev,=1")
            var server = ScramServer(algorithm: algorithm)
            _ = server.clientFirst(Array(good.first.utf8), expectedUsername: nil)
            let first = String(decoding: server.serverFirst(keys: keys, genuine: true, serverNonce: "servernonce")!, as: UTF8.self)
            #expect(String(decoding: serverFinal, as: UTF8.self) == good.final(for: first)?.serverSignature)
            #expect(exchange(ScramClient(algorithm, username: "dev,=1", password: "wrong"), keys: keys) == .failure(.notAuthorized))
        }
    }

    @Test func madeUpKeysNeverVerify() throws {
        let keys = try #require(ScramStoredKeys.derive(password: Array("s3cret".utf8), algorithm: .sha256, iterations: 4096))
        #expect(exchange(ScramClient(username: "ghost", password: "s3cret"), keys: keys, genuine: false) == .failure(.notAuthorized))
    }

    @Test func hostileOrMalformedMessagesAreRefused() {
        func first(_ text: String, expected: String? = nil) -> ScramServer.FirstOutcome {
            var server = ScramServer(algorithm: .sha256)
            return server.clientFirst(Array(text.utf8), expectedUsername: expected)
        }
        #expect(first("p=tls-unique,,n=u,r=abc") == .failure(.malformed))
        #expect(first("n,a=admin,n=u,r=abc") == .failure(.notAuthorized))
        #expect(first("n,,m=ext,n=u,r=abc") == .failure(.malformed))
        #expect(first("n,,n=u=2X,r=abc") == .failure(.malformed))
        #expect(first("n,,n=,r=abc") == .failure(.malformed))
        #expect(first("n,,n=u,r=") == .failure(.malformed))
        #expect(first("garbage") == .failure(.malformed))
        #expect(first("n,,n=\(String(repeating: "a", count: 300)),r=abc") == .failure(.malformed))
        #expect(first("n,,n=bob,r=abc", expected: "alice") == .failure(.notAuthorized))
        #expect(first("n,,n=alice,r=abc", expected: "alice") == .lookUp(username: "alice"))

        var server = ScramServer(algorithm: .sha256)
        let early = server.clientFinal(Array("c=biws,r=x,p=AAAA".utf8))
        #expect(early == .failure(.malformed))
    }

    @Test func theFinalMessageMustEchoNonceAndBinding() throws {
        let keys = try #require(ScramStoredKeys.derive(password: Array("pw".utf8), algorithm: .sha256, iterations: 4096))
        let client = ScramClient(username: "u", password: "pw")
        for tamper in ["c=eSws", "r=clientnonce123other"] {
            var server = ScramServer(algorithm: .sha256)
            _ = server.clientFirst(Array(client.first.utf8), expectedUsername: nil)
            let first = String(decoding: server.serverFirst(keys: keys, genuine: true, serverNonce: "servernonce")!, as: UTF8.self)
            var message = try #require(client.final(for: first)?.message)
            let key = String(tamper.prefix(2))
            let parts = message.split(separator: ",").map { $0.hasPrefix(key) ? Substring(tamper) : $0 }
            message = parts.joined(separator: ",")
            let outcome = server.clientFinal(Array(message.utf8))
            #expect(outcome == .failure(.malformed))
        }
    }
}

@Suite struct ScramAuthenticatorTests {
    func authenticator(_ users: [String: String], algorithm: ScramAlgorithm = .sha256) throws -> ScramAuthenticator {
        var file = PasswordFile(source: "passwd")
        for (user, password) in users { try file.setPassword(password, for: user, scram: algorithm) }
        try file.setPassword("plain", for: "legacy")
        let source = PasswordFileBackend(name: "file", file: file, runner: inlineRunner)
        return ScramAuthenticator(.init(sources: [source], fakeIterations: [algorithm: file.typicalScramIterations(algorithm)]))
    }

    let info = ConnectionInfo(listener: "mqtt://127.0.0.1:1883", remoteAddress: "127.0.0.1:1", allowAnonymous: false)

    /// The whole exchange on the test loop, as a connection runs it on its own.
    func run(_ authenticator: ScramAuthenticator, _ client: ScramClient, connectUsername: String? = nil)
        async throws -> (serverFirst: String?, step: AuthenticationStep)
    {
        let info = self.info
        return try await testLoop.flatSubmit { () -> EventLoopFuture<(serverFirst: String?, step: AuthenticationStep)> in
            let exchange = authenticator.begin(method: client.algorithm.mechanism, clientID: "dev-1", username: connectUsername, connection: info)
            let loopBound = NIOLoopBound(exchange, eventLoop: testLoop)
            return exchange.step(clientData: ByteBuffer(string: client.first), on: testLoop).flatMap { first in
                guard case .continue(let data?) = first else { return testLoop.makeSucceededFuture((nil, first)) }
                let serverFirst = String(buffer: data)
                let final = client.final(for: serverFirst)?.message ?? "c=biws,r=x,p=AAAA"
                return loopBound.value.step(clientData: ByteBuffer(string: final), on: testLoop).map { (serverFirst, $0) }
            }
        }.get()
    }

    @Test func storedKeysInThePasswordFileAuthenticate() async throws {
        let authenticator = try authenticator(["dev-1": "pw-1"])
        #expect(authenticator.supports(method: "SCRAM-SHA-256") && authenticator.supports(method: "SCRAM-SHA-512"))
        #expect(!authenticator.supports(method: "SCRAM-SHA-1"))
        let (_, step) = try await run(authenticator, ScramClient(username: "dev-1", password: "pw-1"))
        guard case .success(let identity, let data) = step else {
            Issue.record("expected success, got \(step)")
            return
        }
        #expect(identity.username == "dev-1" && identity.clientID == "dev-1" && data != nil)
        #expect(try await run(authenticator, ScramClient(username: "dev-1", password: "nope")).step == .failure(.notAuthorized))
    }

    @Test func anUnknownUserGetsAnExchangeLikeARealOne() async throws {
        let authenticator = try authenticator(["dev-1": "pw-1"])
        let real = try await run(authenticator, ScramClient(username: "dev-1", password: "wrong"))
        let ghost = try await run(authenticator, ScramClient(username: "ghost", password: "wrong"))
        let again = try await run(authenticator, ScramClient(username: "ghost", password: "other"))
        #expect(real.step == .failure(.notAuthorized) && ghost.step == .failure(.notAuthorized))
        func fields(_ text: String?) -> [String: String] {
            var out: [String: String] = [:]
            for part in (text ?? "").split(separator: ",") { out[String(part.prefix(1))] = String(part.dropFirst(2)) }
            return out
        }
        let realFields = fields(real.serverFirst)
        let ghostFields = fields(ghost.serverFirst)
        #expect(realFields["i"] == ghostFields["i"])
        #expect(Data(base64Encoded: realFields["s"]!)?.count == Data(base64Encoded: ghostFields["s"]!)?.count)
        #expect(ghostFields["s"] == fields(again.serverFirst)["s"], "an unknown user's salt is stable, as a real one's")
        // A user whose entry is not SCRAM fails the same way.
        #expect(try await run(authenticator, ScramClient(username: "legacy", password: "plain")).step == .failure(.notAuthorized))
    }

    @Test func theUserMustBeTheConnectsOrTheSessions() async throws {
        let authenticator = try authenticator(["dev-1": "pw-1", "dev-2": "pw-2"])
        let step = try await run(authenticator, ScramClient(username: "dev-2", password: "pw-2"), connectUsername: "dev-1").step
        #expect(step == .failure(.notAuthorized))
    }

    @Test func stepsOutOfOrderAreProtocolErrors() async throws {
        let authenticator = try authenticator(["dev-1": "pw-1"])
        let info = self.info
        let steps = try await testLoop.flatSubmit { () -> EventLoopFuture<[AuthenticationStep]> in
            let exchange = authenticator.begin(method: "SCRAM-SHA-256", clientID: "c", username: nil, connection: info)
            let loopBound = NIOLoopBound(exchange, eventLoop: testLoop)
            return exchange.step(clientData: nil, on: testLoop).flatMap { first in
                loopBound.value.step(clientData: ByteBuffer(string: "n,,n=dev-1,r=abc"), on: testLoop).map { [first, $0] }
            }
        }.get()
        #expect(steps == [.failure(.protocolError), .failure(.protocolError)])
    }

    @Test func withoutStoresNoMethodIsOffered() {
        #expect(!ScramAuthenticator(.init(sources: [])).supports(method: "SCRAM-SHA-256"))
    }
}
