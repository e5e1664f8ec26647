/// Subject rules. A subject, reply subject or queue group name goes into a protocol line as is, so
/// a space, tab, CR or LF in it would split or end the line and let the caller inject operations.
enum Subjects {
    enum Kind { case publish, subscribe, reply }

    /// Visible ASCII or UTF-8 continuation bytes only; tokens non-empty; wildcards only where a
    /// subscription allows them (`*` as a whole token, `>` as the last token).
    static func validate(_ subject: String, as kind: Kind) throws(NATSError) {
        guard isValid(subject, kind) else { throw .invalidSubject(subject) }
    }

    static func isValid(_ subject: String, _ kind: Kind) -> Bool {
        if let result = subject.utf8.withContiguousStorageIfAvailable({ check($0, kind) }) { return result }
        var copy = subject
        copy.makeContiguousUTF8()
        return copy.utf8.withContiguousStorageIfAvailable { check($0, kind) } ?? false
    }

    private static func check(_ bytes: UnsafeBufferPointer<UInt8>, _ kind: Kind) -> Bool {
        guard !bytes.isEmpty else { return false }
        var tokenStart = 0
        var i = 0
        while i <= bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: ".") {
                let length = i - tokenStart
                guard length > 0 else { return false }
                if length == 1 {
                    let b = bytes[tokenStart]
                    if b == UInt8(ascii: "*") || b == UInt8(ascii: ">") {
                        guard kind == .subscribe else { return false }
                        if b == UInt8(ascii: ">"), i != bytes.count { return false }
                    }
                }
                tokenStart = i + 1
            } else {
                let b = bytes[i]
                guard b > 0x20, b != 0x7F else { return false }
            }
            i += 1
        }
        return true
    }

    static func validateQueue(_ queue: String) throws(NATSError) {
        guard !queue.isEmpty, queue.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw .invalidQueueGroup(queue)
        }
    }
}
