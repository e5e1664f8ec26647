import Foundation
import NIOCore
import NIOFoundationCompat

/// Limits the parser checks from the control line alone, before it waits for (or buffers) a body.
public struct NATSParserLimits: Sendable, Hashable {
    /// Longest control line (`MSG …`, `-ERR …`), CRLF excluded.
    public var maxControlLine: Int
    /// Longest INFO line: it lists the cluster's URLs, so it may be longer than other lines.
    public var maxInfoLine: Int
    /// Largest message (headers and payload) accepted.
    public var maxPayload: Int

    /// JetStream adds headers (`Nats-Stream`, `Nats-Sequence`, …) to a stored message when it is
    /// read back, so a message may exceed the server's max_payload by that much.
    public static let serverHeaderAllowance = 4096

    public init(maxControlLine: Int = 4096, maxInfoLine: Int = 64 * 1024, maxPayload: Int = 1_048_576 + serverHeaderAllowance) {
        self.maxControlLine = maxControlLine
        self.maxInfoLine = maxInfoLine
        self.maxPayload = maxPayload
    }
}

/// Frames the server → client stream into `ServerOp`s. Pure: it holds only its limits, which an
/// INFO updates from the server's `max_payload`. It consumes bytes only when it returns an op, so
/// it can be called again with more bytes after returning nil. A fuzz target needs nothing else.
public struct NATSProtocolParser: Sendable {
    public var limits: NATSParserLimits
    /// Whether an INFO's `max_payload` replaces `limits.maxPayload`.
    public var adoptsServerMaxPayload: Bool

    public init(limits: NATSParserLimits = .init(), adoptsServerMaxPayload: Bool = true) {
        self.limits = limits
        self.adoptsServerMaxPayload = adoptsServerMaxPayload
    }

    private enum Verb { case msg, hmsg, ping, pong, ok, err, info }

    /// Up to 5 argument tokens, as offsets from the reader index.
    private struct Tokens {
        var starts: (Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0)
        var ends: (Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0)
        var count = 0
        var tooMany = false
        var restStart = 0 // start of the text after the verb, for INFO and -ERR

        func range(_ i: Int) -> Range<Int> {
            switch i {
            case 0: starts.0..<ends.0
            case 1: starts.1..<ends.1
            case 2: starts.2..<ends.2
            case 3: starts.3..<ends.3
            default: starts.4..<ends.4
            }
        }

        mutating func append(_ start: Int, _ end: Int) {
            switch count {
            case 0: (starts.0, ends.0) = (start, end)
            case 1: (starts.1, ends.1) = (start, end)
            case 2: (starts.2, ends.2) = (start, end)
            case 3: (starts.3, ends.3) = (start, end)
            case 4: (starts.4, ends.4) = (start, end)
            default: tooMany = true; return
            }
            count += 1
        }
    }

    public mutating func parse(_ buffer: inout ByteBuffer) throws(NATSProtocolError) -> ServerOp? {
        let readable = buffer.readableBytes
        guard readable > 0 else { return nil }
        let maxLine = max(limits.maxControlLine, limits.maxInfoLine)
        let scan = min(readable, maxLine + 2)
        let newline: Int? = buffer.withUnsafeReadableBytes { raw in
            raw[0..<scan].firstIndex(of: 0x0A)
        }
        guard let newline else {
            // No complete line yet: refuse as soon as it is certain to exceed the limit.
            let limit = startsWithInfo(buffer) ? limits.maxInfoLine : limits.maxControlLine
            if readable > limit + 1 { throw .controlLineTooLong(limit: limit) }
            return nil
        }
        guard newline > 0, buffer.getInteger(at: buffer.readerIndex + newline - 1, as: UInt8.self) == 0x0D else {
            throw .missingCRLF
        }
        let lineLength = newline - 1
        let verbAndTokens: (Verb, Tokens)? = buffer.withUnsafeReadableBytes { raw in
            Self.split(UnsafeRawBufferPointer(rebasing: raw[0..<lineLength]))
        }
        guard let verbAndTokens else { throw .unknownOperation }
        let (verb, tokens) = verbAndTokens
        let limit = verb == .info ? limits.maxInfoLine : limits.maxControlLine
        guard lineLength <= limit else { throw .controlLineTooLong(limit: limit) }
        let lineEnd = newline + 1
        let base = buffer.readerIndex

        switch verb {
        case .ping, .pong, .ok:
            guard tokens.count == 0 else { throw .malformedControlLine }
            buffer.moveReaderIndex(forwardBy: lineEnd)
            return verb == .ping ? .ping : verb == .pong ? .pong : .ok
        case .err:
            var text = buffer.getString(at: base + tokens.restStart, length: lineLength - tokens.restStart) ?? ""
            text = text.trimmingCharacters(in: .whitespaces)
            if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") { text = String(text.dropFirst().dropLast()) }
            buffer.moveReaderIndex(forwardBy: lineEnd)
            return .error(text)
        case .info:
            guard let json = buffer.getSlice(at: base + tokens.restStart, length: lineLength - tokens.restStart),
                  let info = try? JSONDecoder().decode(NATSServerInfo.self, from: json)
            else { throw .malformedInfo }
            if adoptsServerMaxPayload, info.maxPayload > 0 {
                limits.maxPayload = info.maxPayload + NATSParserLimits.serverHeaderAllowance
            }
            buffer.moveReaderIndex(forwardBy: lineEnd)
            return .info(info)
        case .msg, .hmsg:
            let hasHeaders = verb == .hmsg
            let sizes = hasHeaders ? 2 : 1
            guard !tokens.tooMany, tokens.count == 2 + sizes || tokens.count == 3 + sizes else {
                throw .malformedControlLine
            }
            let total = try Self.size(buffer, base, tokens.range(tokens.count - 1))
            let headerLength = try hasHeaders ? Self.size(buffer, base, tokens.range(tokens.count - 2)) : 0
            guard total <= limits.maxPayload else { throw .payloadTooLarge(announced: total, limit: limits.maxPayload) }
            guard headerLength <= total else { throw .headerSizeExceedsTotal }
            let sid = try Self.sid(buffer, base, tokens.range(1))
            // Limits passed: wait for the body.
            guard readable >= lineEnd + total + 2 else { return nil }
            guard buffer.getInteger(at: base + lineEnd + total, as: UInt16.self) == 0x0D0A else { throw .missingCRLF }
            let subjectRange = tokens.range(0)
            let subject = buffer.getString(at: base + subjectRange.lowerBound, length: subjectRange.count)!
            var replyTo: String?
            if tokens.count == 3 + sizes {
                let r = tokens.range(2)
                replyTo = buffer.getString(at: base + r.lowerBound, length: r.count)!
            }
            var headers: NATSHeaders?
            var status: NATSStatus?
            if hasHeaders {
                let block = buffer.getSlice(at: base + lineEnd, length: headerLength)!
                (headers, status) = try HeaderCoding.parse(block)
            }
            let payload = buffer.getSlice(at: base + lineEnd + headerLength, length: total - headerLength)!
            buffer.moveReaderIndex(forwardBy: lineEnd + total + 2)
            return .message(NATSMessage(subject: subject, sid: sid, replyTo: replyTo, headers: headers, status: status, payload: payload))
        }
    }

    private func startsWithInfo(_ buffer: ByteBuffer) -> Bool {
        let probe = buffer.getBytes(at: buffer.readerIndex, length: min(4, buffer.readableBytes)) ?? []
        return zip(probe, "INFO".utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    private static func split(_ line: UnsafeRawBufferPointer) -> (Verb, Tokens)? {
        var i = 0
        while i < line.count, !isSpace(line[i]) { i += 1 }
        guard let verb = verbNamed(UnsafeRawBufferPointer(rebasing: line[0..<i])) else { return nil }
        var tokens = Tokens()
        tokens.restStart = i
        // INFO and -ERR carry free text, not tokens.
        if verb == .info || verb == .err { return (verb, tokens) }
        while i < line.count {
            while i < line.count, isSpace(line[i]) { i += 1 }
            guard i < line.count else { break }
            let start = i
            while i < line.count, !isSpace(line[i]) { i += 1 }
            tokens.append(start, i)
        }
        return (verb, tokens)
    }

    private static func verbNamed(_ bytes: UnsafeRawBufferPointer) -> Verb? {
        func equals(_ name: StaticString) -> Bool {
            guard bytes.count == name.utf8CodeUnitCount else { return false }
            return name.withUTF8Buffer { expected in
                zip(bytes, expected).allSatisfy { a, b in (a >= 97 && a <= 122 ? a - 32 : a) == b }
            }
        }
        if equals("MSG") { return .msg }
        if equals("HMSG") { return .hmsg }
        if equals("PING") { return .ping }
        if equals("PONG") { return .pong }
        if equals("+OK") { return .ok }
        if equals("-ERR") { return .err }
        if equals("INFO") { return .info }
        return nil
    }

    /// A decimal size: digits only (no sign), at most 10 of them, so it cannot overflow.
    private static func size(_ buffer: ByteBuffer, _ base: Int, _ range: Range<Int>) throws(NATSProtocolError) -> Int {
        guard range.count > 0, range.count <= 10 else { throw .invalidSize }
        var value = 0
        for offset in range {
            let b = buffer.getInteger(at: base + offset, as: UInt8.self)!
            guard b >= 0x30, b <= 0x39 else { throw .invalidSize }
            value = value * 10 + Int(b - 0x30)
        }
        return value
    }

    private static func sid(_ buffer: ByteBuffer, _ base: Int, _ range: Range<Int>) throws(NATSProtocolError) -> UInt64 {
        guard range.count > 0, range.count <= 19 else { throw .malformedControlLine }
        var value: UInt64 = 0
        for offset in range {
            let b = buffer.getInteger(at: base + offset, as: UInt8.self)!
            guard b >= 0x30, b <= 0x39 else { throw .malformedControlLine }
            value = value * 10 + UInt64(b - 0x30)
        }
        return value
    }
}

/// The parser as a NIO decoder, for a channel pipeline.
public struct NATSFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ServerOp
    public var parser: NATSProtocolParser

    public init(limits: NATSParserLimits = .init()) {
        parser = NATSProtocolParser(limits: limits)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ServerOp? {
        try parser.parse(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ServerOp? {
        try parser.parse(&buffer)
    }
}
