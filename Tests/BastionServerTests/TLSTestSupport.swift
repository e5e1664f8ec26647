import BastionSecurity
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import Synchronization
import X509

@testable import BastionServer

/// A CA made in the test, able to issue any kind of certificate, good or deliberately bad.
struct TestCA {
    let key: Certificate.PrivateKey
    let certificate: Certificate
    static let now = Date()

    init(name: String = "Test CA", now: Date = TestCA.now, days: Int = 3650, maxPathLength: Int? = 0) throws {
        key = CertificateIssuer.newKey()
        certificate = try CertificateIssuer.makeCA(
            commonName: name,
            key: key,
            now: now,
            days: days,
            maxPathLength: maxPathLength
        )
    }

    struct Leaf {
        let key: Certificate.PrivateKey
        let certificate: Certificate
    }

    func client(
        _ commonName: String = "sensor-1",
        names: [String] = [],
        notBefore: Date = TestCA.now - 60,
        notAfter: Date = TestCA.now + 86_400,
        extendedKeyUsage: [ExtendedKeyUsage.Usage]? = [.clientAuth],
        serial: Certificate.SerialNumber = .init()
    ) throws -> Leaf {
        let key = CertificateIssuer.newKey()
        let cert = try CertificateIssuer.issue(
            subject: DistinguishedName { CommonName(commonName) },
            publicKey: key.publicKey,
            issuer: certificate,
            issuerKey: self.key,
            notBefore: notBefore,
            notAfter: notAfter,
            extendedKeyUsage: extendedKeyUsage,
            names: try names.map { try SubjectAltName($0) },
            serialNumber: serial
        )
        return Leaf(key: key, certificate: cert)
    }

    func intermediate(_ name: String = "Test Intermediate") throws -> TestCA {
        let key = CertificateIssuer.newKey()
        let cert = try CertificateIssuer.issue(
            subject: DistinguishedName { CommonName(name) },
            publicKey: key.publicKey,
            issuer: certificate,
            issuerKey: self.key,
            notBefore: TestCA.now - 60,
            notAfter: TestCA.now + 86_400 * 30,
            isCertificateAuthority: true,
            extendedKeyUsage: nil,
            names: []
        )
        return TestCA(key: key, certificate: cert)
    }

    private init(key: Certificate.PrivateKey, certificate: Certificate) {
        self.key = key
        self.certificate = certificate
    }

    func server(names: [String] = ["DNS:localhost", "IP:127.0.0.1"], days: Int = 30) throws -> Leaf {
        let key = CertificateIssuer.newKey()
        let cert = try CertificateIssuer.issueServer(
            names: try names.map { try SubjectAltName($0) },
            publicKey: key.publicKey,
            issuer: certificate,
            issuerKey: self.key,
            now: TestCA.now,
            days: days
        )
        return Leaf(key: key, certificate: cert)
    }

    func crl(revoking serials: [Certificate.SerialNumber], nextUpdateDays: Double = 30) throws -> CertificateRevocationList {
        try CertificateRevocationList.make(
            issuer: certificate,
            issuerKey: key,
            entries: serials.map { .init(serialNumber: $0, revocationDate: TestCA.now - 10) },
            thisUpdate: TestCA.now - 60,
            nextUpdate: TestCA.now + nextUpdateDays * 86_400,
            crlNumber: 1
        )
    }
}

extension Certificate {
    var pem: String { (try? CertificateIssuer.certificatePEM(self)) ?? "" }
    var nio: NIOSSLCertificate {
        get throws { try NIOSSLCertificate(bytes: CertificateDER.serialize(self), format: .der) }
    }
}

extension Certificate.PrivateKey {
    var pem: String { (try? CertificateIssuer.keyPEM(self)) ?? "" }
    var nio: NIOSSLPrivateKey {
        get throws { try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem) }
    }
}

func writeFile(_ text: String, to path: String, mode: mode_t = 0o644) throws {
    try PKIFiles.write(text, to: path, mode: mode, overwrite: true)
}

/// Collects log lines so tests can assert what an operator would read.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    var all: [Entry] { entries.withLock { $0 } }

    func contains(_ text: String, atLeast level: Logger.Level = .trace) -> Bool {
        all.contains { $0.level >= level && ($0.message.contains(text) || $0.metadata.values.contains(text)) }
    }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(
                Entry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
            )
        }
    }
}

/// Records what `installMQTT` was called with.
final class MQTTInstallRecorder: Sendable {
    private let infos = Mutex<[TransportInfo]>([])

    var calls: [TransportInfo] { infos.withLock { $0 } }

    var install: @Sendable (any Channel, TransportInfo) -> EventLoopFuture<Void> {
        { channel, info in
            self.infos.withLock { $0.append(info) }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }
}

/// A server channel running `installTransport` and a client channel with a NIOSSL client handler,
/// wired back to back in memory. Certificate verification runs in a Swift task, so `run` shuttles
/// bytes and polls until `done` holds or the round limit is reached (the test then fails on its
/// expectations rather than hanging).
final class TLSTestPair {
    let server = NIOAsyncTestingChannel()
    let client = NIOAsyncTestingChannel()
    let recorder = MQTTInstallRecorder()
    let log = LogCapture()
    let clientErrors = Locked<[String]>([])
    let rejections = Locked<[TransportRejection]>([])

    init(
        listener: String = "mqtts://127.0.0.1:8883",
        holder: TLSContextHolder,
        clientConfiguration: TLSConfiguration,
        handshakeTimeout: TimeAmount = .seconds(10)
    ) async throws {
        let url = try ListenerURL(parsing: listener)
        server.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 40_001)
        let recorder = self.recorder
        let logger = log.logger
        let rejections = self.rejections
        try await server.testingEventLoop.executeInContext { [server] in
            _ = installTransport(
                channel: server,
                listener: url,
                tls: holder,
                wsPath: url.path,
                logger: logger,
                handshakeTimeout: handshakeTimeout,
                onRejection: { rejection in rejections.mutate { $0.append(rejection) } },
                installMQTT: recorder.install
            )
        }
        let context = try NIOSSLContext(configuration: clientConfiguration)
        let errors = clientErrors
        try await client.testingEventLoop.executeInContext { [client] in
            let handler = try NIOSSLClientHandler(context: context, serverHostname: nil)
            try client.pipeline.syncOperations.addHandler(handler)
            try client.pipeline.syncOperations.addHandler(ErrorSink(errors: errors))
        }
        try await server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8883)).get()
        try await client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8883)).get()
    }

    /// Moves bytes both ways until `done()` holds and the wires are quiet, or nothing more can happen.
    func run(until done: () async throws -> Bool) async throws {
        var idleRounds = 0
        for _ in 0..<2_000 {
            var moved = false
            while let bytes = try await client.readOutbound(as: ByteBuffer.self) {
                moved = true
                if server.isActive { _ = try? await server.writeInbound(bytes) }
            }
            while let bytes = try await server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if client.isActive { _ = try? await client.writeInbound(bytes) }
            }
            await server.testingEventLoop.run()
            await client.testingEventLoop.run()
            if try await done(), !moved { return }
            if moved {
                idleRounds = 0
            } else {
                idleRounds += 1
                if idleRounds > 2_000 { return }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    var serverClosed: Bool { !server.isActive }
}

/// Keeps client-side errors (alerts from the server) for assertions.
final class ErrorSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let errors: Locked<[String]>

    init(errors: Locked<[String]>) {
        self.errors = errors
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.mutate { $0.append("\(error)") }
        context.close(promise: nil)
    }
}

final class Locked<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) { storage = Mutex(value) }

    var value: Value { storage.withLock { $0 } }

    func mutate(_ body: (inout Value) -> Void) { storage.withLock { body(&$0) } }
}
