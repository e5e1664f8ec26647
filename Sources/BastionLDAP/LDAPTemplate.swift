/// A DN or filter template with placeholders: `%u` (the user name), `%d` (the user's DN), `%%`
/// (a literal percent sign). Values are escaped by the caller for the template's kind (RFC 4514
/// for DNs, RFC 4515 for filters) before substitution, so they can never add structure.
struct LDAPTemplate: Sendable, Hashable {
    let text: String
    let placeholders: Set<Character>

    /// Refuses placeholders outside `allowed` and a dangling `%`.
    init(_ text: String, allowed: Set<Character>) throws(TemplateError) {
        var found: Set<Character> = []
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else { continue }
            guard let next = iterator.next() else { throw TemplateError("ends with a lone '%'") }
            if next == "%" { continue }
            guard allowed.contains(next) else {
                throw TemplateError("unknown placeholder %\(next) (allowed: \(allowed.sorted().map { "%\($0)" }.joined(separator: ", ")), %%)")
            }
            found.insert(next)
        }
        self.text = text
        self.placeholders = found
    }

    struct TemplateError: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The template with each placeholder replaced by its (already escaped) value.
    func substitute(_ values: [Character: String]) -> String {
        var out = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "%", let next = iterator.next() else {
                out.append(character)
                continue
            }
            if next == "%" {
                out.append("%")
            } else {
                out += values[next] ?? ""
            }
        }
        return out
    }
}
