@testable import BastionNATS
import NIOCore
import Testing

@Suite("Headers")
struct HeadersTests {
    @Test func encodeDecodeRoundTrip() throws {
        var headers = NATSHeaders()
        headers["Nats-Msg-Id"] = "abc"
        headers.append("Multi", "1")
        headers.append("Multi", "2")
        headers["Empty"] = ""
        var block = ByteBuffer()
        HeaderCoding.write(headers, to: &block)
        #expect(block.readableBytes == HeaderCoding.encodedLength(headers))
        let (decoded, status) = try HeaderCoding.parse(block)
        #expect(decoded == headers)
        #expect(status == nil)
    }

    @Test func lookupIgnoresCaseAndSetReplaces() {
        var headers = NATSHeaders([("Nats-Msg-Id", "1")])
        #expect(headers["NATS-MSG-ID"] == "1")
        headers["nats-msg-id"] = "2"
        #expect(headers.fields.count == 1)
        #expect(headers["Nats-Msg-Id"] == "2")
        headers["Nats-Msg-Id"] = nil
        #expect(headers.isEmpty)
    }

    @Test func statusWithHeaders() throws {
        let block = ByteBuffer(string: "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 12\r\nNats-Last-Stream: 40\r\n\r\n")
        let (headers, status) = try HeaderCoding.parse(block)
        #expect(status == NATSStatus(code: 100, text: "Idle Heartbeat"))
        #expect(headers[NATSHeaders.lastConsumer] == "12")
        #expect(headers[NATSHeaders.lastStream] == "40")
    }

    @Test func valueWhitespaceTrimmedNamesKept() throws {
        let (headers, _) = try HeaderCoding.parse(ByteBuffer(string: "NATS/1.0\r\nkEy:   spaced value  \r\n\r\n"))
        #expect(headers.fields.first?.name == "kEy")
        #expect(headers["key"] == "spaced value")
    }

    @Test(arguments: ["HTTP/1.1\r\n\r\n", "NATS/1.0\r\nno colon\r\n\r\n", "NATS/1.0 abc\r\n\r\n", "NATS/1.0", "NATS/1.0\r\n: v\r\n\r\n"])
    func malformed(block: String) {
        #expect(throws: NATSProtocolError.malformedHeaders) { try HeaderCoding.parse(ByteBuffer(string: block)) }
    }
}
