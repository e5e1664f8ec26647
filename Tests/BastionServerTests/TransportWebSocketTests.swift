import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import BastionServer

@Suite("MQTT over WebSocket")
struct TransportWebSocketTests {
    // MARK: Handshake policy

    func headers(_ pairs: [(String, String)]) -> HTTPHeaders { HTTPHeaders(pairs) }

    @Test func acceptsMQTTSubprotocol() {
        #expect(
            WebSocketHandshakePolicy.decide(uri: "/mqtt", headers: headers([("Sec-WebSocket-Protocol", "mqtt")]), path: "/mqtt")
                == .accept(subprotocol: "mqtt")
        )
        #expect(
            WebSocketHandshakePolicy.decide(
                uri: "/mqtt?client=1",
                headers: headers([("Sec-WebSocket-Protocol", "chat, MQTT")]),
                path: "/mqtt"
            ) == .accept(subprotocol: "mqtt")
        )
        #expect(
            WebSocketHandshakePolicy.decide(uri: "/mqtt", headers: headers([("Sec-WebSocket-Protocol", "mqttv3.1")]), path: "/mqtt")
                == .accept(subprotocol: "mqttv3.1")
        )
    }

    @Test func refusesOtherPathsAndSubprotocols() {
        guard case .refuse(let s1, _) = WebSocketHandshakePolicy.decide(
            uri: "/other", headers: headers([("Sec-WebSocket-Protocol", "mqtt")]), path: "/mqtt")
        else { Issue.record("wrong path accepted"); return }
        #expect(s1 == .notFound)
        guard case .refuse(let s2, let reason) = WebSocketHandshakePolicy.decide(
            uri: "/mqtt", headers: headers([("Sec-WebSocket-Protocol", "chat")]), path: "/mqtt")
        else { Issue.record("chat accepted"); return }
        #expect(s2 == .badRequest)
        #expect(reason.contains("chat"))
        guard case .refuse(let s3, _) = WebSocketHandshakePolicy.decide(uri: "/mqtt", headers: headers([]), path: "/mqtt")
        else { Issue.record("missing subprotocol accepted"); return }
        #expect(s3 == .badRequest)
    }

    // MARK: Adapter

    func maskedFrame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
        let key: WebSocketMaskingKey = [0x11, 0x22, 0x33, 0x44]
        var data = ByteBuffer(bytes: bytes)
        data.webSocketMask(key)
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
    }

    @Test func binaryFramesBecomeBytesInOrder() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        try channel.writeInbound(maskedFrame(.binary, [0x10, 0x02], fin: false))
        try channel.writeInbound(maskedFrame(.continuation, [0x00, 0x04]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x10, 0x02]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x00, 0x04]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func writesAreSentAsOneBinaryFramePerFlush() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        let first = channel.write(ByteBuffer(bytes: [0x20, 0x02, 0x00, 0x00]))
        let second = channel.write(ByteBuffer(bytes: [0xD0, 0x00]))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        channel.flush()
        let frame = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(frame.opcode == .binary)
        #expect(frame.fin)
        #expect(frame.maskKey == nil)
        #expect(frame.data == ByteBuffer(bytes: [0x20, 0x02, 0x00, 0x00, 0xD0, 0x00]))
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        channel.embeddedEventLoop.run()
        try first.wait()
        try second.wait()
    }

    @Test func textFrameIsRefusedWith1003() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        try channel.writeInbound(maskedFrame(.text, Array("hello".utf8)))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        #expect(close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1003)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func unmaskedClientFrameIsAProtocolError() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [1])))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1002)
    }

    @Test func pingIsAnsweredAndCloseIsEchoed() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        try channel.writeInbound(maskedFrame(.ping, [9, 8, 7]))
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong)
        #expect(pong.data == ByteBuffer(bytes: [9, 8, 7]))
        try channel.writeInbound(maskedFrame(.connectionClose, [0x03, 0xE8]))
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        #expect(close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1000)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func closingFromMQTTSendsACloseFrameFirst() throws {
        let channel = EmbeddedChannel(handler: WebSocketMQTTAdapter())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = channel.write(ByteBuffer(bytes: [0xE0, 0x00]))
        try channel.close().wait()
        let data = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(data.opcode == .binary)
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
    }

    // MARK: Full upgrade over ws://

    func upgradeRequest(path: String = "/mqtt", subprotocol: String? = "mqtt") -> ByteBuffer {
        var text = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocol { text += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        text += "\r\n"
        return ByteBuffer(string: text)
    }

    func drainOutbound(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var result = ByteBuffer()
        while let item = try channel.readOutbound(as: Any.self) {
            if var buffer = item as? ByteBuffer {
                result.writeBuffer(&buffer)
            } else if case .byteBuffer(var buffer)? = item as? IOData {
                result.writeBuffer(&buffer)
            }
        }
        return result
    }

    func webSocketChannel(recorder: MQTTInstallRecorder, log: LogCapture) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "::1", port: 50_000)).wait()
        let url = try ListenerURL(parsing: "ws://127.0.0.1:8080/mqtt")
        try installTransport(
            channel: channel,
            listener: url,
            tls: nil,
            wsPath: "/mqtt",
            logger: log.logger,
            handshakeTimeout: .seconds(10),
            installMQTT: recorder.install
        ).wait()
        return channel
    }

    @Test func upgradeThenMQTTBytesBothWays() throws {
        let recorder = MQTTInstallRecorder()
        let channel = try webSocketChannel(recorder: recorder, log: LogCapture())
        try channel.writeInbound(upgradeRequest())
        channel.embeddedEventLoop.run()
        let response = String(buffer: try drainOutbound(channel))
        #expect(response.hasPrefix("HTTP/1.1 101 Switching Protocols"))
        #expect(response.lowercased().contains("sec-websocket-protocol: mqtt\r\n"))
        #expect(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        let info = try #require(recorder.calls.first)
        #expect(info.transport == .ws)
        #expect(info.remoteAddress == "[::1]:50000")
        #expect(!info.isSecure)

        // A masked binary frame carrying a PINGREQ arrives as raw MQTT bytes.
        try channel.writeInbound(ByteBuffer(bytes: [0x82, 0x82, 1, 2, 3, 4, 0xC0 ^ 1, 0x00 ^ 2]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0xC0, 0x00]))
        // A PINGRESP written by MQTT leaves as one unmasked binary frame.
        try channel.writeOutbound(ByteBuffer(bytes: [0xD0, 0x00]))
        #expect(try drainOutbound(channel) == ByteBuffer(bytes: [0x82, 0x02, 0xD0, 0x00]))
    }

    @Test(arguments: [
        ("/mqtt", "chat" as String?, "400"),
        ("/mqtt", nil, "400"),
        ("/elsewhere", "mqtt", "404"),
    ])
    func refusedUpgrades(path: String, subprotocol: String?, status: String) throws {
        let recorder = MQTTInstallRecorder()
        let log = LogCapture()
        let channel = try webSocketChannel(recorder: recorder, log: log)
        try channel.writeInbound(upgradeRequest(path: path, subprotocol: subprotocol))
        channel.embeddedEventLoop.run()
        let response = String(buffer: try drainOutbound(channel))
        #expect(response.hasPrefix("HTTP/1.1 \(status)"), "\(response)")
        #expect(recorder.calls.isEmpty)
        #expect(!channel.isActive)
        #expect(log.contains("WebSocket upgrade refused (\(status))"))
    }

    @Test func plainHTTPIsRefused() throws {
        let recorder = MQTTInstallRecorder()
        let channel = try webSocketChannel(recorder: recorder, log: LogCapture())
        try channel.writeInbound(ByteBuffer(string: "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.embeddedEventLoop.run()
        #expect(String(buffer: try drainOutbound(channel)).hasPrefix("HTTP/1.1 400"))
        #expect(recorder.calls.isEmpty)
    }

    @Test func textFrameAfterUpgradeClosesWith1003() throws {
        let recorder = MQTTInstallRecorder()
        let log = LogCapture()
        let channel = try webSocketChannel(recorder: recorder, log: log)
        try channel.writeInbound(upgradeRequest())
        channel.embeddedEventLoop.run()
        _ = try drainOutbound(channel)
        try channel.writeInbound(ByteBuffer(bytes: [0x81, 0x81, 1, 2, 3, 4, UInt8(ascii: "x") ^ 1]))
        channel.embeddedEventLoop.run()
        #expect(try drainOutbound(channel) == ByteBuffer(bytes: [0x88, 0x02, 0x03, 0xEB]))
        #expect(!channel.isActive)
        #expect(log.contains("text WebSocket frame"))
    }

    @Test func mqttListenerCallsInstallAtOnce() throws {
        let recorder = MQTTInstallRecorder()
        let channel = EmbeddedChannel()
        try installTransport(
            channel: channel,
            listener: ListenerURL(parsing: "mqtt://127.0.0.1:1883"),
            tls: nil,
            wsPath: "/mqtt",
            logger: LogCapture().logger,
            handshakeTimeout: .seconds(10),
            installMQTT: recorder.install
        ).wait()
        #expect(recorder.calls.first?.transport == .mqtt)
        #expect(recorder.calls.first?.tlsVersion == nil)
    }

    @Test func stalledUpgradeTimesOut() throws {
        let log = LogCapture()
        let channel = EmbeddedChannel()
        try installTransport(
            channel: channel,
            listener: ListenerURL(parsing: "ws://127.0.0.1:8080"),
            tls: nil,
            wsPath: "/mqtt",
            logger: log.logger,
            handshakeTimeout: .seconds(5),
            installMQTT: MQTTInstallRecorder().install
        ).wait()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
        #expect(log.contains("WebSocket upgrade timed out"))
    }
}
