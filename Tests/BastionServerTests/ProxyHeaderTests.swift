@testable import BastionServer
import NIOCore
import Testing

@Suite struct ProxyHeaderTests {
    func parse(_ bytes: [UInt8]) throws(ProxyHeaderError) -> (ProxyHeader?, Int) {
        var buffer = ByteBuffer(bytes: bytes)
        let header = try ProxyHeaderParser.parse(&buffer)
        return (header, buffer.readableBytes)
    }

    func v2(command: UInt8 = 1, family: UInt8 = 0x11, addresses: [UInt8]) -> [UInt8] {
        ProxyHeader.signature + [0x20 | command, family, UInt8(addresses.count >> 8), UInt8(addresses.count & 0xFF)] + addresses
    }

    @Test func v1NamesTheClientAndLeavesWhatFollows() throws {
        let (header, rest) = try parse(Array("PROXY TCP4 192.0.2.7 127.0.0.1 40001 1883\r\n".utf8) + [0x10, 0x00])
        #expect(header == .proxied(try SocketAddress(ipAddress: "192.0.2.7", port: 40001)))
        #expect(rest == 2)
        let (six, _) = try parse(Array("PROXY TCP6 2001:db8::7 ::1 40001 1883\r\n".utf8))
        #expect(six == .proxied(try SocketAddress(ipAddress: "2001:db8::7", port: 40001)))
        #expect(try parse(Array("PROXY UNKNOWN\r\n".utf8)).0 == .local)
    }

    @Test func v2NamesTheClient() throws {
        let v4 = v2(addresses: [192, 0, 2, 7, 127, 0, 0, 1, 0x9C, 0x41, 0x07, 0x5B] + [0x04, 0x00, 0x01, 0x00])  // plus a TLV
        let (header, rest) = try parse(v4 + [0x10])
        #expect(header == .proxied(try SocketAddress(ipAddress: "192.0.2.7", port: 40001)))
        #expect(rest == 1)
        let v6 = v2(family: 0x21, addresses: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [7] + Array(repeating: 0, count: 15) + [1, 0x9C, 0x41, 0x07, 0x5B])
        #expect(try parse(v6).0 == .proxied(try SocketAddress(ipAddress: "2001:db8::7", port: 40001)))
        #expect(try parse(v2(command: 0, addresses: [])).0 == .local)
    }

    @Test func incompleteHeadersWaitForMoreBytes() throws {
        let full = Array("PROXY TCP4 192.0.2.7 127.0.0.1 40001 1883\r\n".utf8)
        for n in 1..<full.count { #expect(try parse(Array(full.prefix(n))).0 == nil) }
        let binary = v2(addresses: [192, 0, 2, 7, 127, 0, 0, 1, 0x9C, 0x41, 0x07, 0x5B])
        for n in 1..<binary.count { #expect(try parse(Array(binary.prefix(n))).0 == nil) }
    }

    @Test(arguments: [
        "PROXY TCP4 192.0.2.7 127.0.0.1 40001\r\n", "PROXY TCP4 999.0.2.7 127.0.0.1 40001 1883\r\n",
        "PROXY TCP4 192.0.2.7 127.0.0.1 40001 1883\n", "PROXY TCP4 192.0.2.7 127.0.0.1 040001 1883\r\n",
        "PROXY TCP6 192.0.2.7 127.0.0.1 40001 1883\r\n", "PROXY UDP4 192.0.2.7 127.0.0.1 40001 1883\r\n",
        "PROXI TCP4", "PROXY TCP4 " + String(repeating: "1", count: 120),
    ])
    func malformedV1IsRefused(text: String) {
        #expect(throws: ProxyHeaderError.self) { try parse(Array(text.utf8)) }
    }

    @Test func malformedV2IsRefused() {
        #expect(throws: ProxyHeaderError.tooLong) { try parse(ProxyHeader.signature + [0x21, 0x11, 0xFF, 0xFF]) }
        #expect(throws: ProxyHeaderError.self) { try parse(ProxyHeader.signature + [0x31, 0x11, 0x00, 0x00]) }  // version 3
        #expect(throws: ProxyHeaderError.self) { try parse(ProxyHeader.signature + [0x2F, 0x11, 0x00, 0x00]) }  // command 15
        #expect(throws: ProxyHeaderError.self) { try parse(self.v2(addresses: [1, 2, 3])) }                   // addresses cut short
        #expect(throws: ProxyHeaderError.notAHeader) { try parse([0x0D, 0x0A, 0x0D, 0x0B]) }
        #expect(throws: ProxyHeaderError.notAHeader) { try parse([0x10, 0x00]) }
    }
}
