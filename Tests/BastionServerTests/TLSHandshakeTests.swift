import BastionSecurity
import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing
import X509
import BastionTesting

@testable import BastionServer

/// In-memory TLS handshakes between `installTransport` and a NIOSSL client, with certificates made in
/// the test.
@Suite("TLS handshakes")
struct TLSHandshakeTests {
    let ca: TestCA
    let dir: TemporaryDirectory
    let server: TestCA.Leaf

    init() throws {
        ca = try TestCA()
        dir = try TemporaryDirectory()
        server = try ca.server()
        try writeFile(ca.certificate.pem, to: dir.file("ca.pem"))
        try writeFile(server.certificate.pem, to: dir.file("server.pem"))
        try writeFile(server.key.pem, to: dir.file("server.key"), mode: 0o600)
    }

    func holder(
        requireCertificate: Bool = true,
        withCA: Bool = true,
        crls: [String] = [],
        minimumVersion: TLSMinimumVersion = .tls12,
        identity: CertificateIdentitySource = .commonName,
        log: LogCapture = LogCapture()
    ) throws -> TLSContextHolder {
        let settings = TLSServerSettings(
            certificateFile: dir.file("server.pem"),
            keyFile: dir.file("server.key"),
            clientCAFile: withCA ? dir.file("ca.pem") : nil,
            crlFiles: crls,
            requireCertificate: requireCertificate,
            identitySource: identity,
            minimumVersion: minimumVersion
        )
        return try TLSContextHolder(name: "test", settings: settings, logger: log.logger)
    }

    func clientConfiguration(
        leaf: TestCA.Leaf?,
        minimum: TLSVersion = .tlsv12,
        maximum: TLSVersion? = nil,
        alpn: [String] = []
    ) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.trustRoots = .certificates([try ca.certificate.nio])
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = minimum
        c.maximumTLSVersion = maximum
        c.applicationProtocols = alpn
        if let leaf {
            c.certificateChain = [.certificate(try leaf.certificate.nio)]
            c.privateKey = .privateKey(try leaf.key.nio)
        }
        return c
    }

    /// Runs a handshake to its end; returns the pair for assertions.
    func handshake(
        holder: TLSContextHolder,
        client: TLSConfiguration,
        listener: String = "mqtts://127.0.0.1:8883"
    ) async throws -> TLSTestPair {
        let pair = try await TLSTestPair(listener: listener, holder: holder, clientConfiguration: client)
        try await pair.run { !pair.recorder.calls.isEmpty || pair.serverClosed }
        return pair
    }

    // MARK: Accepted

    @Test func goodClientCertificateOverTLS13() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client("sensor-1")
        let pair = try await handshake(holder: holder(), client: clientConfiguration(leaf: leaf))
        let info = try #require(pair.recorder.calls.first)
        #expect(info.transport == .mqtts)
        #expect(info.tlsVersion == "TLSv1.3")
        #expect(info.cipherSuite?.hasPrefix("TLS_AES_") == true || info.cipherSuite == "TLS_CHACHA20_POLY1305_SHA256")
        #expect(info.certificateIdentity == "sensor-1")
        #expect(info.certificateSerial == leaf.certificate.serialNumber.hexString)
        #expect(info.certificateSubject == "CN=sensor-1")
        #expect(info.remoteAddress == "127.0.0.1:40001")
        #expect(info.listener.description == "mqtts://127.0.0.1:8883")
        #expect(info.certificateRequirements.requireCertificate)
        #expect(info.isSecure)
        #expect(!pair.serverClosed)
    }

    @Test func tls12UsesAnECDHEAEADSuite() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client("sensor-2")
        let pair = try await handshake(holder: holder(), client: clientConfiguration(leaf: leaf, maximum: .tlsv12))
        let info = try #require(pair.recorder.calls.first)
        #expect(info.tlsVersion == "TLSv1.2")
        #expect(info.cipherSuite == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        #expect(info.certificateIdentity == "sensor-2")
    }

    @Test func identityFromEmailSAN() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client("cn-not-used", names: ["email:pump-3@plant.example"])
        let pair = try await handshake(holder: holder(identity: .sanEmail), client: clientConfiguration(leaf: leaf))
        #expect(pair.recorder.calls.first?.certificateIdentity == "pump-3@plant.example")
    }

    @Test func withoutClientCANoCertificateIsRead() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client()
        let pair = try await handshake(holder: holder(requireCertificate: false, withCA: false), client: clientConfiguration(leaf: leaf))
        let info = try #require(pair.recorder.calls.first)
        #expect(info.clientCertificate == nil)
        #expect(!info.certificateRequirements.requireCertificate)
    }

    @Test func optionalCertificateMayBeAbsentButNotBad() async throws {
        defer { dir.cleanup() }
        let none = try await handshake(holder: holder(requireCertificate: false), client: clientConfiguration(leaf: nil))
        #expect(none.recorder.calls.first?.clientCertificate == nil)
        #expect(none.recorder.calls.count == 1)

        let expired = try ca.client(notBefore: TestCA.now - 10 * 86_400, notAfter: TestCA.now - 86_400)
        let bad = try await handshake(holder: holder(requireCertificate: false), client: clientConfiguration(leaf: expired))
        #expect(bad.recorder.calls.isEmpty)
        #expect(bad.serverClosed)
        #expect(bad.log.contains("expired"))
    }

    // MARK: Rejected

    enum BadClient: String, CaseIterable, Sendable {
        case expired, notYetValid, foreignCA, noClientAuth, revokedPEM, revokedDER, missing
    }

    @Test(arguments: BadClient.allCases)
    func rejectedClientCertificates(_ kind: BadClient) async throws {
        defer { dir.cleanup() }
        var crls: [String] = []
        let leaf: TestCA.Leaf?
        let code: String
        switch kind {
        case .expired:
            leaf = try ca.client(notBefore: TestCA.now - 10 * 86_400, notAfter: TestCA.now - 86_400)
            code = "expired"
        case .notYetValid:
            leaf = try ca.client(notBefore: TestCA.now + 86_400, notAfter: TestCA.now + 10 * 86_400)
            code = "not_yet_valid"
        case .foreignCA:
            leaf = try TestCA(name: "Elsewhere CA").client()
            code = "unknown_ca"
        case .noClientAuth:
            leaf = try ca.client(extendedKeyUsage: [.serverAuth])
            code = "no_client_auth"
        case .revokedPEM, .revokedDER:
            let revoked = try ca.client("stolen")
            let crl = try ca.crl(revoking: [revoked.certificate.serialNumber])
            if kind == .revokedPEM {
                try writeFile(crl.pemString, to: dir.file("crl.pem"))
                crls = [dir.file("crl.pem")]
            } else {
                try PKIFiles.write(crl.derBytes, to: dir.file("crl.der"), mode: 0o644, overwrite: true)
                crls = [dir.file("crl.der")]
            }
            leaf = revoked
            code = "revoked"
        case .missing:
            leaf = nil
            code = "missing_certificate"
        }
        let log = LogCapture()
        let pair = try await handshake(holder: holder(crls: crls, log: log), client: clientConfiguration(leaf: leaf))
        #expect(pair.recorder.calls.isEmpty)
        #expect(pair.serverClosed)
        let line = pair.log.all.first { $0.message.contains("TLS handshake rejected") }
        #expect(line?.metadata["reason"] == code, "\(pair.log.all.map(\.message))")
        #expect(line?.metadata["remote"] == "127.0.0.1:40001")
        #expect(line?.level == .warning)
        let reported = try #require(pair.rejections.value.first)
        #expect(reported.reason == code)
        #expect(reported.remoteAddress == "127.0.0.1:40001")
        #expect(reported.isCertificateProblem)
        #expect(pair.rejections.value.count == 1)
    }

    @Test func tls13OnlyRefusesTLS12Clients() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client()
        let h = try holder(minimumVersion: .tls13)
        let old = try await handshake(holder: h, client: clientConfiguration(leaf: leaf, maximum: .tlsv12))
        #expect(old.recorder.calls.isEmpty)
        #expect(old.log.all.contains { $0.metadata["reason"] == "protocol_version" })
        let new = try await handshake(holder: h, client: clientConfiguration(leaf: leaf))
        #expect(new.recorder.calls.first?.tlsVersion == "TLSv1.3")
    }

    @Test func tls11IsRefused() async throws {
        defer { dir.cleanup() }
        let pair = try await handshake(
            holder: holder(requireCertificate: false),
            client: clientConfiguration(leaf: nil, minimum: .tlsv1, maximum: .tlsv11)
        )
        #expect(pair.recorder.calls.isEmpty)
        #expect(pair.serverClosed)
        let line = pair.log.all.first { $0.message.contains("TLS handshake rejected") }
        #expect(line?.metadata["reason"] == "protocol_version")
        #expect(line?.level == .notice)
    }

    @Test func bytesThatAreNotAClientHelloAreRefused() async throws {
        defer { dir.cleanup() }
        let pair = try await TLSTestPair(holder: holder(), clientConfiguration: clientConfiguration(leaf: nil))
        var garbage = ByteBuffer()
        garbage.writeString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try? await pair.server.writeInbound(garbage)
        await pair.server.testingEventLoop.run()
        #expect(pair.serverClosed)
        #expect(pair.recorder.calls.isEmpty)
        #expect(pair.log.all.contains { $0.metadata["reason"] == "not_tls" })
    }

    @Test func stalledHandshakeTimesOut() async throws {
        defer { dir.cleanup() }
        let pair = try await TLSTestPair(
            holder: holder(),
            clientConfiguration: clientConfiguration(leaf: nil),
            handshakeTimeout: .seconds(3)
        )
        await pair.server.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(!pair.serverClosed)
        await pair.server.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(pair.serverClosed)
        #expect(pair.log.all.contains { $0.metadata["reason"] == "handshake_timeout" && $0.message.contains("TLS handshake") })
        #expect(pair.rejections.value.map(\.reason) == ["handshake_timeout"])
    }

    // MARK: ALPN

    @Test func alpnHTTP1OnAnMQTTSListenerSwitchesToWebSocket() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client("ws-client")
        let pair = try await TLSTestPair(
            holder: holder(),
            clientConfiguration: clientConfiguration(leaf: leaf, alpn: ["http/1.1"])
        )
        // Handshake: no MQTT yet, the HTTP upgrade comes first.
        let server = pair.server
        try await pair.run {
            try await server.testingEventLoop.executeInContext {
                (try? server.pipeline.syncOperations.handler(type: WebSocketRefusalHandler.self)) != nil
            }
        }
        #expect(pair.recorder.calls.isEmpty)
        #expect(!pair.serverClosed)
        var request = ByteBuffer()
        request.writeString(
            "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        try await pair.client.writeOutbound(request)
        try await pair.run { !pair.recorder.calls.isEmpty }
        let info = try #require(pair.recorder.calls.first)
        #expect(info.transport == .wss)
        #expect(info.alpn == "http/1.1")
        #expect(info.certificateIdentity == "ws-client")
        var response = ""
        while let part = try await pair.client.readInbound(as: ByteBuffer.self) {
            response += String(buffer: part)
        }
        #expect(response.hasPrefix("HTTP/1.1 101"))
        #expect(response.lowercased().contains("sec-websocket-protocol: mqtt"))
    }

    @Test func alpnMQTTOnAWSSListenerIsRawMQTT() async throws {
        defer { dir.cleanup() }
        let leaf = try ca.client()
        let pair = try await handshake(
            holder: holder(),
            client: clientConfiguration(leaf: leaf, alpn: ["mqtt"]),
            listener: "wss://127.0.0.1:443/mqtt"
        )
        let info = try #require(pair.recorder.calls.first)
        #expect(info.transport == .mqtts)
        #expect(info.alpn == "mqtt")
    }

    // MARK: Reload

    @Test func reloadSwapsMaterialAndKeepsOldOnBrokenFiles() async throws {
        defer { dir.cleanup() }
        let log = LogCapture()
        let h = try holder(log: log)
        let original = h.current.serverCertificate
        #expect(original == server.certificate)

        let renewed = try ca.server(names: ["DNS:localhost"], days: 60)
        try writeFile(renewed.certificate.pem, to: dir.file("server.pem"))
        try writeFile(renewed.key.pem, to: dir.file("server.key"), mode: 0o600)
        try h.reload()
        #expect(h.current.serverCertificate == renewed.certificate)
        #expect(log.contains("TLS material reloaded"))

        // New handshakes use the new certificate.
        let leaf = try ca.client()
        let pair = try await handshake(holder: h, client: clientConfiguration(leaf: leaf))
        #expect(pair.recorder.calls.count == 1)
        let client = pair.client
        let presented = try await client.testingEventLoop.executeInContext {
            try client.pipeline.syncOperations.handler(type: NIOSSLHandler.self).peerCertificate?.toDERBytes()
        }
        #expect(presented == (try CertificateDER.serialize(renewed.certificate)))

        // A broken certificate file: rejected, old material stays.
        try writeFile("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", to: dir.file("server.pem"))
        #expect(throws: TLSLoadError.self) { try h.reload() }
        #expect(h.current.serverCertificate == renewed.certificate)
        #expect(log.all.contains { $0.level == .error && $0.message.contains("TLS reload rejected") })

        // A key that group members can read: rejected too.
        try writeFile(renewed.certificate.pem, to: dir.file("server.pem"))
        chmod(dir.file("server.key"), 0o644)
        let error = #expect(throws: TLSLoadError.self) { try h.reload() }
        #expect(error?.kind == .keyPermissions)
        #expect(error?.description.contains("listener test") == true)
    }

    @Test func reloadedCRLRefusesNewHandshakesOnly() async throws {
        defer { dir.cleanup() }
        try writeFile(ca.crl(revoking: []).pemString, to: dir.file("crl.pem"))
        let h = try holder(crls: [dir.file("crl.pem")])
        let leaf = try ca.client("soon-revoked")
        let before = try await handshake(holder: h, client: clientConfiguration(leaf: leaf))
        #expect(before.recorder.calls.count == 1)

        try writeFile(ca.crl(revoking: [leaf.certificate.serialNumber]).pemString, to: dir.file("crl.pem"))
        try h.reload()
        let after = try await handshake(holder: h, client: clientConfiguration(leaf: leaf))
        #expect(after.recorder.calls.isEmpty)
        #expect(after.log.all.contains { $0.metadata["reason"] == "revoked" })
        // The connection made before the reload is untouched.
        #expect(!before.serverClosed)
    }

    @Test func intermediateCacheKeepsOnlyIntermediatesAndIsBounded() throws {
        defer { dir.cleanup() }
        let cache = IntermediateCertificateCache()
        let root = try TestCA(name: "Root", maxPathLength: nil)
        let intermediate = try root.intermediate()
        let leaf = try intermediate.client()
        cache.remember([leaf.certificate, root.certificate])
        #expect(cache.all.isEmpty)
        cache.remember([leaf.certificate, intermediate.certificate, root.certificate])
        cache.remember([leaf.certificate, intermediate.certificate, root.certificate])
        #expect(cache.all == [intermediate.certificate])
        for i in 0..<(IntermediateCertificateCache.capacity + 5) {
            let other = try root.intermediate("I\(i)")
            cache.remember([leaf.certificate, other.certificate, root.certificate])
        }
        #expect(cache.all.count == IntermediateCertificateCache.capacity)
        #expect(!cache.all.contains(intermediate.certificate))
    }

    @Test func startupRefusesExpiredServerCertificate() throws {
        defer { dir.cleanup() }
        let settings = TLSServerSettings(certificateFile: dir.file("server.pem"), keyFile: dir.file("server.key"))
        let error = #expect(throws: TLSLoadError.self) {
            try TLSContextHolder(name: "mqtts://0.0.0.0:8883", settings: settings, logger: LogCapture().logger, clock: { TestCA.now + 400 * 86_400 })
        }
        #expect(error?.kind == .expired)
        #expect(error?.description.hasPrefix("listener mqtts://0.0.0.0:8883:") == true)
    }
}
