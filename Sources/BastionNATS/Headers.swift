import NIOCore

/// The status line of a headers block (`NATS/1.0 503`, `NATS/1.0 100 Idle Heartbeat`): the server
/// uses it for no-responders, JetStream heartbeats and flow control, and pull request results.
public struct NATSStatus: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var text: String

    public init(code: Int, text: String = "") {
        self.code = code
        self.text = text
    }

    public static let noResponders = 503
    public static let controlMessage = 100
    public static let noMessages = 404
    public static let requestTimeout = 408
    public static let conflict = 409

    public var description: String { text.isEmpty ? "\(code)" : "\(code) \(text)" }
}

/// Message headers in the order they were written. Names keep their spelling; lookups ignore ASCII
/// case, as servers and other clients differ in how they spell `Nats-Msg-Id`.
public struct NATSHeaders: Sendable, Hashable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { fields.isEmpty }

    public subscript(name: String) -> String? {
        get { fields.first { Self.sameName($0.name, name) }?.value }
        set {
            fields.removeAll { Self.sameName($0.name, name) }
            if let newValue { fields.append((name: name, value: newValue)) }
        }
    }

    public func values(_ name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    public mutating func append(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        fields.makeIterator()
    }

    public static func == (lhs: NATSHeaders, rhs: NATSHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.name)
            hasher.combine(field.value)
        }
    }

    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { lower($0) == lower($1) }
    }

    @inline(__always) private static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }
}

// Well-known header names.
public extension NATSHeaders {
    static let messageID = "Nats-Msg-Id"
    static let expectedStream = "Nats-Expected-Stream"
    static let expectedLastSequence = "Nats-Expected-Last-Sequence"
    static let expectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence"
    static let expectedLastMessageID = "Nats-Expected-Last-Msg-Id"
    static let rollup = "Nats-Rollup"
    static let lastConsumer = "Nats-Last-Consumer"
    static let lastStream = "Nats-Last-Stream"
    static let consumerStalled = "Nats-Consumer-Stalled"
    static let stream = "Nats-Stream"
    static let sequence = "Nats-Sequence"
    static let timeStamp = "Nats-Time-Stamp"
    static let subject = "Nats-Subject"
    static let lastSequence = "Nats-Last-Sequence"
}

/// Encoding and decoding of the `NATS/1.0` headers block.
enum HeaderCoding {
    static let versionLine = "NATS/1.0"

    /// Writes the block, ending with the blank line. Names and values were validated by the caller.
    static func write(_ headers: NATSHeaders, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("NATS/1.0\r\n")
        for field in headers.fields {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    static func encodedLength(_ headers: NATSHeaders) -> Int {
        var length = 10 + 2 // "NATS/1.0\r\n" + final "\r\n"
        for field in headers.fields { length += field.name.utf8.count + field.value.utf8.count + 4 }
        return length
    }

    /// A header name is a token: visible ASCII without `:`; a value has no CR or LF. Anything else
    /// could end the block early and inject lines into the protocol stream.
    static func validate(_ headers: NATSHeaders) throws(NATSError) {
        for field in headers.fields {
            guard !field.name.isEmpty,
                  field.name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") })
            else { throw .invalidHeader(field.name) }
            guard field.value.utf8.allSatisfy({ $0 != 0x0D && $0 != 0x0A }) else {
                throw .invalidHeader(field.name)
            }
        }
    }

    /// Parses a complete headers block (status line, fields, blank line).
    static func parse(_ block: ByteBuffer) throws(NATSProtocolError) -> (NATSHeaders, NATSStatus?) {
        var lines = block.readableBytesView[...]
        guard let firstEnd = lines.firstRange(of: crlf) else { throw .malformedHeaders }
        let first = lines[lines.startIndex..<firstEnd.lowerBound]
        lines = lines[firstEnd.upperBound...]
        let version = UTF8View.prefix(first, upTo: UInt8(ascii: " "))
        guard version.elementsEqual(versionLine.utf8) else { throw .malformedHeaders }
        var status: NATSStatus?
        if first.count > version.count {
            let rest = first[(first.startIndex + version.count + 1)...].drop { $0 == 0x20 }
            let codeBytes = UTF8View.prefix(rest, upTo: UInt8(ascii: " "))
            guard codeBytes.count == 3, codeBytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .malformedHeaders
            }
            let code = codeBytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            let text = rest.dropFirst(3).drop { $0 == 0x20 }
            status = NATSStatus(code: code, text: String(decoding: text, as: UTF8.self))
        }
        var headers = NATSHeaders()
        while let end = lines.firstRange(of: crlf) {
            let line = lines[lines.startIndex..<end.lowerBound]
            lines = lines[end.upperBound...]
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw .malformedHeaders
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            let value = line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
            var trimmed = value[...]
            while let last = trimmed.last, last == 0x20 || last == 0x09 { trimmed = trimmed.dropLast() }
            headers.append(name, String(decoding: trimmed, as: UTF8.self))
        }
        return (headers, status)
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]
}

private enum UTF8View {
    static func prefix(_ bytes: ByteBufferView.SubSequence, upTo byte: UInt8) -> ByteBufferView.SubSequence {
        bytes[bytes.startIndex..<(bytes.firstIndex(of: byte) ?? bytes.endIndex)]
    }
}
