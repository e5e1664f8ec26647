@testable import BastionNATS
import Foundation
import NIOCore
import Testing

@Suite("TLS against nats-server")
struct TLSIntegrationTests {
    @Test func verifiedTLSAndRefusals() async throws {
        let certs = TestServerScript.temporaryDirectory("certs")
        defer { try? FileManager.default.removeItem(atPath: certs) }
        _ = try await TestServerScript.run(["certs", certs])
        try await withServer(["--tls", "\(certs)/server.pem", "\(certs)/server.key"]) { server in
            // tls:// with the test CA: the certificate's IP SAN matches 127.0.0.1.
            var config = try NATSConfiguration(urls: ["tls://127.0.0.1:\(server.port)"],
                                               authentication: .userPassword(user: TestServer.user, password: TestServer.password))
            config.tls = NATSTLSConfiguration(caFile: "\(certs)/ca.pem")
            try await withConnection(config) { nats in
                let sub = try await nats.subscribe("secure")
                try nats.publish("secure", payload: "over tls")
                #expect(try await sub.next(timeout: .seconds(10)).map { String(buffer: $0.payload) } == "over tls")
            }
            // nats:// to a server that requires TLS: upgraded, and verified against the system
            // roots, which do not know the test CA.
            await #expect(throws: (any Error).self) {
                _ = try await NATSConnection.connect(server.configuration())
            }
        }
        // A client that wants TLS refuses a server that does not offer it.
        try await withServer { server in
            var config = try NATSConfiguration(urls: ["tls://127.0.0.1:\(server.port)"],
                                               authentication: .userPassword(user: TestServer.user, password: TestServer.password))
            config.tls = NATSTLSConfiguration(caFile: "\(certs)/ca.pem")
            await #expect(throws: NATSError.tlsRequiredByClient(url: "tls://127.0.0.1:\(server.port)")) {
                _ = try await NATSConnection.connect(config)
            }
        }
    }
}
