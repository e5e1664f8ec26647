@testable import BastionNATS
import NIOCore
import NIOTestUtils
import Testing

private func buffer(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

private func parseAll(_ input: String, limits: NATSParserLimits = .init()) throws -> [ServerOp] {
    var parser = NATSProtocolParser(limits: limits)
    var bytes = buffer(input)
    var ops: [ServerOp] = []
    while let op = try parser.parse(&bytes) { ops.append(op) }
    #expect(bytes.readableBytes == 0)
    return ops
}

private func parseError(_ input: String, limits: NATSParserLimits = .init()) -> NATSProtocolError? {
    var parser = NATSProtocolParser(limits: limits)
    var bytes = buffer(input)
    do {
        while try parser.parse(&bytes) != nil {}
        return nil
    } catch {
        return error
    }
}

@Suite("Protocol parser")
struct ProtocolParserTests {
    @Test func controlOperations() throws {
        let ops = try parseAll("PING\r\nPONG\r\n+OK\r\n-ERR 'Authorization Violation'\r\nping\r\n")
        #expect(ops == [.ping, .pong, .ok, .error("Authorization Violation"), .ping])
    }

    @Test func info() throws {
        let ops = try parseAll(#"INFO {"server_id":"S1","version":"2.9.10","max_payload":2048,"auth_required":true,"nonce":"abc","connect_urls":["127.0.0.1:4223"],"headers":true,"jetstream":true}"# + "\r\n")
        guard case .info(let info) = ops.first else { Issue.record("no INFO"); return }
        #expect(info.serverID == "S1")
        #expect(info.maxPayload == 2048)
        #expect(info.authRequired)
        #expect(info.nonce == "abc")
        #expect(info.connectURLs == ["127.0.0.1:4223"])
        #expect(info.jetStream)
    }

    @Test func infoSetsPayloadLimit() throws {
        var parser = NATSProtocolParser()
        var bytes = buffer(#"INFO {"max_payload":100}"# + "\r\n")
        _ = try parser.parse(&bytes)
        #expect(parser.limits.maxPayload == 100 + NATSParserLimits.serverHeaderAllowance)
    }

    @Test func message() throws {
        let ops = try parseAll("MSG a.b 7 5\r\nhello\r\nMSG a.b 7 reply.x 0\r\n\r\n")
        #expect(ops == [
            .message(NATSMessage(subject: "a.b", sid: 7, payload: buffer("hello"))),
            .message(NATSMessage(subject: "a.b", sid: 7, replyTo: "reply.x", payload: ByteBuffer())),
        ])
    }

    @Test func messageWithTabsAndBinaryPayload() throws {
        let ops = try parseAll("MSG\ta\t1\t4\r\n\r\n\r\n\r\n")
        #expect(ops == [.message(NATSMessage(subject: "a", sid: 1, payload: buffer("\r\n\r\n")))])
    }

    @Test func headersMessage() throws {
        let headers = "NATS/1.0\r\nNats-Msg-Id: 1\r\nA: b c\r\n\r\n"
        let input = "HMSG a 2 r \(headers.utf8.count) \(headers.utf8.count + 2)\r\n\(headers)hi\r\n"
        let ops = try parseAll(input)
        guard case .message(let message) = ops.first else { Issue.record("no message"); return }
        #expect(message.replyTo == "r")
        #expect(message.headers?["nats-msg-id"] == "1")
        #expect(message.headers?["A"] == "b c")
        #expect(message.status == nil)
        #expect(String(buffer: message.payload) == "hi")
    }

    @Test(arguments: [
        ("NATS/1.0 503\r\n\r\n", 503, ""),
        ("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n\r\n", 100, "Idle Heartbeat"),
        ("NATS/1.0 404 No Messages\r\n\r\n", 404, "No Messages"),
        ("NATS/1.0 408 Request Timeout\r\n\r\n", 408, "Request Timeout"),
        ("NATS/1.0 100 FlowControl Request\r\n\r\n", 100, "FlowControl Request"),
    ])
    func statusLines(block: String, code: Int, text: String) throws {
        let ops = try parseAll("HMSG _INBOX.x 1 \(block.utf8.count) \(block.utf8.count)\r\n\(block)\r\n")
        guard case .message(let message) = ops.first else { Issue.record("no message"); return }
        #expect(message.status == NATSStatus(code: code, text: text))
        #expect(message.payload.readableBytes == 0)
    }

    @Test func payloadIsASliceOfTheInput() throws {
        var parser = NATSProtocolParser()
        var bytes = buffer("MSG a 1 3\r\nabc\r\n")
        guard case .message(let message) = try parser.parse(&bytes) else { Issue.record("no message"); return }
        // Same storage: a slice starts at an offset into the received buffer.
        let sameStorage = message.payload.withUnsafeReadableBytes { payload in
            bytes.withVeryUnsafeBytes { all in payload.baseAddress! >= all.baseAddress! && payload.baseAddress! < all.baseAddress! + all.count }
        }
        #expect(sameStorage)
    }

    @Test func incompleteInputWaits() throws {
        var parser = NATSProtocolParser()
        for partial in ["MS", "MSG a 1 5\r", "MSG a 1 5\r\nhel", "MSG a 1 5\r\nhello", "MSG a 1 5\r\nhello\r"] {
            var bytes = buffer(partial)
            #expect(try parser.parse(&bytes) == nil)
            #expect(bytes.readableBytes == partial.utf8.count)
        }
    }

    @Test(arguments: [
        ("FOO bar\r\n", NATSProtocolError.unknownOperation),
        ("MSGX a 1 1\r\nx\r\n", .unknownOperation),
        ("PING\n", .missingCRLF),
        ("MSG a 1 -1\r\n", .invalidSize),
        ("MSG a 1 99999999999\r\n", .invalidSize),
        ("MSG a 1 1x\r\n", .invalidSize),
        ("MSG a 1\r\n", .malformedControlLine),
        ("MSG a 1 b c 5\r\n", .malformedControlLine),
        ("MSG a x 1\r\nx\r\n", .malformedControlLine),
        ("MSG a 1 3\r\nabcXY", .missingCRLF),
        ("HMSG a 1 20 10\r\n", .headerSizeExceedsTotal),
        ("HMSG a 1 5 5\r\nHELLO\r\n", .malformedHeaders),
        ("HMSG a 1 15 15\r\nNATS/1.0 5x\r\n\r\n\r\n", .malformedHeaders),
        ("PING extra\r\n", .malformedControlLine),
        ("INFO {not json}\r\n", .malformedInfo),
    ])
    func malformed(input: String, expected: NATSProtocolError) {
        #expect(parseError(input) == expected)
    }

    @Test func controlLineLimitBeforeBuffering() {
        let limits = NATSParserLimits(maxControlLine: 64, maxInfoLine: 128, maxPayload: 1024)
        // No newline yet, but already longer than any allowed line.
        #expect(parseError("MSG " + String(repeating: "a", count: 80), limits: limits) == .controlLineTooLong(limit: 64))
        #expect(parseError("INFO " + String(repeating: "a", count: 200), limits: limits) == .controlLineTooLong(limit: 128))
        // INFO may be longer than other lines.
        #expect(parseError("INFO {" + String(repeating: " ", count: 80) + "}\r\n", limits: limits) == nil)
    }

    @Test func payloadLimitBeforeBuffering() {
        let limits = NATSParserLimits(maxPayload: 1000)
        // Only the control line has arrived: refused without waiting for 5000 bytes.
        #expect(parseError("MSG a 1 5000\r\n", limits: limits) == .payloadTooLarge(announced: 5000, limit: 1000))
        #expect(parseError("HMSG a 1 10 5000\r\n", limits: limits) == .payloadTooLarge(announced: 5000, limit: 1000))
    }

    @Test func decoderVerifier() throws {
        let headers = "NATS/1.0\r\nK: v\r\n\r\n"
        let hm = headers.utf8.count
        let cases: [(String, [ServerOp])] = [
            ("PING\r\n", [.ping]),
            ("PONG\r\n+OK\r\n", [.pong, .ok]),
            ("MSG a.b 1 5\r\nhello\r\n", [.message(NATSMessage(subject: "a.b", sid: 1, payload: buffer("hello")))]),
            ("MSG a 12 r.1 3\r\n\r\n\r\r\n", [.message(NATSMessage(subject: "a", sid: 12, replyTo: "r.1", payload: buffer("\r\n\r")))]),
            ("HMSG a 3 \(hm) \(hm + 1)\r\n\(headers)x\r\nPING\r\n", [
                .message(NATSMessage(subject: "a", sid: 3, headers: NATSHeaders([("K", "v")]), payload: buffer("x"))), .ping,
            ]),
            ("-ERR 'Stale Connection'\r\n", [.error("Stale Connection")]),
            ("MSG big 1 5000\r\n" + String(repeating: "z", count: 5000) + "\r\n",
             [.message(NATSMessage(subject: "big", sid: 1, payload: buffer(String(repeating: "z", count: 5000))))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: cases.map { (buffer($0.0), $0.1) },
            decoderFactory: { NATSFrameDecoder() })
    }

    /// Random and mutated inputs: the parser returns, waits or throws, and never traps or consumes
    /// bytes it did not parse.
    @Test func randomInputsNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        let seeds = ["MSG a 1 3\r\nabc\r\n", "HMSG a 1 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", "PING\r\n", "INFO {}\r\n", "-ERR 'x'\r\n"]
        for _ in 0..<3000 {
            var bytes = Array(seeds.randomElement(using: &rng)!.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                default: if bytes.count > 1 { bytes.remove(at: i) }
                }
            }
            var parser = NATSProtocolParser(limits: NATSParserLimits(maxControlLine: 64, maxInfoLine: 128, maxPayload: 64))
            var buffer = ByteBuffer(bytes: bytes)
            while true {
                let before = buffer.readableBytes
                guard let op = try? parser.parse(&buffer) else { break }
                _ = op
                #expect(buffer.readableBytes < before)
            }
        }
    }
}
