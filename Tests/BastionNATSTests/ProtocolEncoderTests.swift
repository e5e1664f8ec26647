@testable import BastionNATS
import Foundation
import NIOCore
import Testing

private func encoded(_ body: (inout ByteBuffer) throws -> Void) rethrows -> String {
    var out = ByteBuffer()
    try body(&out)
    return String(buffer: out)
}

@Suite("Protocol encoder")
struct ProtocolEncoderTests {
    @Test func publish() throws {
        #expect(try encoded { try NATSProtocolEncoder.writePublish(subject: "a.b", reply: nil, headers: nil, payload: ByteBuffer(string: "hi"), to: &$0) }
            == "PUB a.b 2\r\nhi\r\n")
        #expect(try encoded { try NATSProtocolEncoder.writePublish(subject: "a", reply: "_INBOX.x", headers: nil, payload: ByteBuffer(), to: &$0) }
            == "PUB a _INBOX.x 0\r\n\r\n")
    }

    @Test func publishWithHeadersRoundTrips() throws {
        var headers = NATSHeaders()
        headers[NATSHeaders.messageID] = "m-1"
        headers.append("X", "1")
        headers.append("X", "2")
        let wire = try encoded { try NATSProtocolEncoder.writePublish(subject: "s", reply: "r", headers: headers, payload: ByteBuffer(string: "body"), to: &$0) }
        let block = "NATS/1.0\r\nNats-Msg-Id: m-1\r\nX: 1\r\nX: 2\r\n\r\n"
        #expect(wire == "HPUB s r \(block.utf8.count) \(block.utf8.count + 4)\r\n\(block)body\r\n")
        // What a server would deliver for it parses back to the same headers.
        var parser = NATSProtocolParser()
        var delivered = ByteBuffer(string: wire.replacingOccurrences(of: "HPUB s r", with: "HMSG s 1 r"))
        guard case .message(let message) = try parser.parse(&delivered) else { Issue.record("no message"); return }
        #expect(message.headers == headers)
        #expect(message.headers?.values("x") == ["1", "2"])
        #expect(String(buffer: message.payload) == "body")
    }

    @Test func subscribeAndUnsubscribe() throws {
        #expect(try encoded { try NATSProtocolEncoder.writeSubscribe(subject: "a.*.>", queue: nil, sid: 1, to: &$0) } == "SUB a.*.> 1\r\n")
        #expect(try encoded { try NATSProtocolEncoder.writeSubscribe(subject: "a", queue: "workers", sid: 42, to: &$0) } == "SUB a workers 42\r\n")
        #expect(encoded { NATSProtocolEncoder.writeUnsubscribe(sid: 42, to: &$0) } == "UNSUB 42\r\n")
        #expect(encoded { NATSProtocolEncoder.writeUnsubscribe(sid: 1_000_000_007, max: 10, to: &$0) } == "UNSUB 1000000007 10\r\n")
        #expect(encoded { NATSProtocolEncoder.writePing(to: &$0); NATSProtocolEncoder.writePong(to: &$0) } == "PING\r\nPONG\r\n")
    }

    @Test func connect() throws {
        var options = NATSConnectOptions(tlsRequired: true, name: "node-1")
        options.user = "u"
        options.pass = "p\"w"
        let line = encoded { NATSProtocolEncoder.writeConnect(options, to: &$0) }
        #expect(line.hasPrefix("CONNECT {"))
        #expect(line.hasSuffix("}\r\n"))
        let json = try JSONSerialization.jsonObject(with: Data(line.dropFirst(8).dropLast(1).utf8)) as! [String: Any]
        #expect(json["verbose"] as? Bool == false)
        #expect(json["pedantic"] as? Bool == false)
        #expect(json["headers"] as? Bool == true)
        #expect(json["no_responders"] as? Bool == true)
        #expect(json["tls_required"] as? Bool == true)
        #expect(json["protocol"] as? Int == 1)
        #expect(json["lang"] as? String == "swift")
        #expect(json["name"] as? String == "node-1")
        #expect(json["user"] as? String == "u")
        #expect(json["pass"] as? String == "p\"w")
        #expect(json["auth_token"] == nil)
        #expect(json["sig"] == nil)
    }

    @Test(arguments: ["", "a b", "a\r\nPUB x 1", "a\nb", "a\tb", "a..b", ".a", "a.", "a.*", "a.>", "*"])
    func publishSubjectRejected(subject: String) {
        var out = ByteBuffer()
        #expect(throws: NATSError.invalidSubject(subject)) {
            try NATSProtocolEncoder.writePublish(subject: subject, reply: nil, headers: nil, payload: ByteBuffer(), to: &out)
        }
        #expect(out.readableBytes == 0)
    }

    @Test func replyAndQueueRejected() {
        var out = ByteBuffer()
        #expect(throws: NATSError.invalidSubject("r 1\r\nPING")) {
            try NATSProtocolEncoder.writePublish(subject: "a", reply: "r 1\r\nPING", headers: nil, payload: ByteBuffer(), to: &out)
        }
        #expect(throws: NATSError.invalidQueueGroup("q 1")) {
            try NATSProtocolEncoder.writeSubscribe(subject: "a", queue: "q 1", sid: 1, to: &out)
        }
        #expect(throws: NATSError.invalidSubject("a.>.b")) {
            try NATSProtocolEncoder.writeSubscribe(subject: "a.>.b", queue: nil, sid: 1, to: &out)
        }
        #expect(out.readableBytes == 0)
    }

    @Test(arguments: [("X-Bad\r\nInjected", "v"), ("Name:", "v"), ("Sp ace", "v"), ("", "v"), ("Ok", "line\r\nInjected: 1"), ("Ok", "lf\n")])
    func headersRejected(name: String, value: String) {
        var out = ByteBuffer()
        #expect(throws: NATSError.invalidHeader(name)) {
            try NATSProtocolEncoder.writePublish(subject: "a", reply: nil, headers: NATSHeaders([(name, value)]), payload: ByteBuffer(), to: &out)
        }
        #expect(out.readableBytes == 0)
    }

    @Test(arguments: [0, 7, 10, 99, 12345, Int(UInt32.max), Int.max])
    func decimals(value: Int) {
        #expect(encoded { NATSProtocolEncoder.writeDecimal(value, to: &$0) } == String(value))
    }
}
