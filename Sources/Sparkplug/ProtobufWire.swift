/// Protocol Buffers wire format, read field by field without decoding messages, for the edits the
/// server makes to payloads it otherwise forwards byte for byte.
enum ProtobufWire {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case startGroup = 3
        case endGroup = 4
        case fixed32 = 5
    }

    /// One top-level field: `range` covers its tag and value.
    struct Field: Equatable {
        var number: UInt32
        var wireType: WireType
        var range: Range<Int>
        /// The value of a varint field.
        var varint: UInt64
        /// The contents of a length-delimited field (without its length prefix).
        var contents: Range<Int>
    }

    /// Unknown groups may nest; past this depth the payload is refused rather than walked.
    static let maximumGroupDepth = 64
    static let maximumFieldNumber: UInt32 = (1 << 29) - 1

    /// The top-level fields of `bytes` in order, or nil when the bytes are not wire format: a varint
    /// longer than 10 bytes or above 64 bits, a tag above 32 bits or with field number 0 or a
    /// wire type 6/7, a length or fixed-size value past the end, or unbalanced groups. Nested
    /// messages are not looked into.
    static func fields(_ bytes: UnsafeBufferPointer<UInt8>) -> [Field]? {
        var fields: [Field] = []
        var position = bytes.startIndex
        while position < bytes.endIndex {
            guard let field = readField(bytes, at: &position) else { return nil }
            if field.wireType == .endGroup { return nil }
            fields.append(field)
        }
        return fields
    }

    static func fields(_ bytes: [UInt8]) -> [Field]? {
        bytes.withUnsafeBufferPointer { fields($0) }
    }

    /// The last value of top-level varint field `number` (a decoder keeps the last one), without
    /// allocating: `.malformed` when the bytes are not wire format at the top level.
    static func lastVarint(_ number: UInt32, in bytes: UnsafeBufferPointer<UInt8>) -> TopLevelVarint {
        var position = bytes.startIndex
        var value: UInt64?
        while position < bytes.endIndex {
            guard let field = readField(bytes, at: &position), field.wireType != .endGroup else { return .malformed }
            if field.number == number {
                guard field.wireType == .varint else { return .malformed }
                value = field.varint
            }
        }
        return .wellFormed(value)
    }

    enum TopLevelVarint: Equatable {
        case wellFormed(UInt64?)
        case malformed
    }

    /// Reads a tag and its value (a whole group, for start-group).
    private static func readField(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> Field? {
        let start = position
        guard let (number, wireType) = readTag(bytes, at: &position) else { return nil }
        var varint: UInt64 = 0
        var contents = position..<position
        switch wireType {
        case .varint:
            guard let value = readVarint(bytes, at: &position) else { return nil }
            varint = value
        case .fixed64:
            guard bytes.endIndex - position >= 8 else { return nil }
            position += 8
        case .fixed32:
            guard bytes.endIndex - position >= 4 else { return nil }
            position += 4
        case .lengthDelimited:
            guard let length = readVarint(bytes, at: &position), length <= UInt64(bytes.endIndex - position) else { return nil }
            contents = position..<(position + Int(length))
            position = contents.upperBound
        case .startGroup:
            guard skipGroup(bytes, number: number, at: &position) else { return nil }
        case .endGroup:
            break
        }
        return Field(number: number, wireType: wireType, range: start..<position, varint: varint, contents: contents)
    }

    /// Skips to just past the end-group tag matching `number`, iteratively so that hostile nesting
    /// costs no stack.
    private static func skipGroup(_ bytes: UnsafeBufferPointer<UInt8>, number: UInt32, at position: inout Int) -> Bool {
        var open: [UInt32] = [number]
        while let innermost = open.last {
            guard position < bytes.endIndex, let (fieldNumber, wireType) = readTag(bytes, at: &position) else { return false }
            switch wireType {
            case .varint:
                guard readVarint(bytes, at: &position) != nil else { return false }
            case .fixed64:
                guard bytes.endIndex - position >= 8 else { return false }
                position += 8
            case .fixed32:
                guard bytes.endIndex - position >= 4 else { return false }
                position += 4
            case .lengthDelimited:
                guard let length = readVarint(bytes, at: &position), length <= UInt64(bytes.endIndex - position) else { return false }
                position += Int(length)
            case .startGroup:
                guard open.count < maximumGroupDepth else { return false }
                open.append(fieldNumber)
            case .endGroup:
                guard fieldNumber == innermost else { return false }
                open.removeLast()
            }
        }
        return true
    }

    private static func readTag(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> (UInt32, WireType)? {
        guard let tag = readVarint(bytes, at: &position), tag <= UInt64(UInt32.max),
              let wireType = WireType(rawValue: UInt8(tag & 7)) else { return nil }
        let number = UInt32(tag >> 3)
        guard number >= 1, number <= maximumFieldNumber else { return nil }
        return (number, wireType)
    }

    /// At most 10 bytes; the 10th may only carry the 64th bit.
    static func readVarint(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        while index < bytes.endIndex {
            let byte = bytes[index]
            index += 1
            if shift == 63, byte > 1 { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                position = index
                return value
            }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func appendTag(_ number: UInt32, _ wireType: WireType, to bytes: inout [UInt8]) {
        appendVarint(UInt64(number) << 3 | UInt64(wireType.rawValue), to: &bytes)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var value = value >> 7
        while value != 0 {
            size += 1
            value >>= 7
        }
        return size
    }
}
