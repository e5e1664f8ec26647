/// Reads Mosquitto's ACL file format, as Mosquitto 2.x does (`aclfile__parse` in
/// `src/security_default.c`):
///
/// ```
/// # Lines starting with '#' are comments (there are no comments at the end of a line).
/// # Rules before any `user` line are for anonymous clients:
/// topic read public/#
/// # The rest of a `user` line (blanks trimmed) is the username:
/// user bob
/// # topic [read|write|readwrite|deny] FILTER; without an access word: readwrite.
/// topic readwrite plant/#
/// topic plant/status
/// # After an access word, the rest of the line is the filter (it may contain spaces):
/// topic read name with spaces
/// # pattern lines apply to every client; %u = username, %c = client id:
/// pattern write devices/%c/#
/// ```
///
/// `read` = subscribe + receive, `write` = publish. Trailing whitespace is ignored; a line whose
/// first non-blank character is `#` is a comment. Unlike Mosquitto, tabs also separate words.
/// Any other first word is an error naming the line.
enum MosquittoACLFile {
    static func parse(_ text: String, source: String, firstOrder: Int) throws(ACLError) -> [ACLRule] {
        var rules: [ACLRule] = []
        var user: String?
        for (index, raw) in splitLines(text).enumerated() {
            let location = "\(source):\(index + 1)"
            let line = trimTrailingWhitespace(raw)
            let body = trimBlanks(line[...])
            if body.isEmpty || body.hasPrefix("#") { continue }

            let (keyword, afterKeyword) = nextWord(body)
            switch keyword {
            case "user":
                let name = trimBlanks(afterKeyword)
                guard !name.isEmpty else { throw ACLError(source: location, message: "'user' needs a username") }
                user = String(name)
            case "topic", "pattern":
                let (first, afterFirst) = nextWord(afterKeyword)
                guard !first.isEmpty else { throw ACLError(source: location, message: "'\(keyword)' needs a topic filter") }
                let remainder = trimBlanks(afterFirst)
                let accessWord: String
                let filter: String
                if remainder.isEmpty {
                    accessWord = "readwrite"
                    filter = String(first)
                } else {
                    accessWord = String(first)
                    filter = String(remainder)
                }
                let effect: RuleEffect
                switch accessWord {
                case "read": effect = .allow([.subscribe, .read])
                case "write": effect = .allow(.publish)
                case "readwrite": effect = .allow(.all)
                case "deny": effect = .deny
                default:
                    throw ACLError(source: location, message: "unknown access '\(accessWord)'; use read, write, readwrite or deny")
                }
                let isPattern = keyword == "pattern"
                let levels: [FilterLevel]
                do {
                    levels = try ACLRule.parseLevels(filter, substitutes: isPattern)
                } catch {
                    switch error {
                    case .invalidFilter(let why):
                        throw ACLError(source: location, message: "invalid topic filter '\(filter)': \(why)")
                    }
                }
                let subject: RuleSubject = isPattern ? .all : (user.map { .user($0) } ?? .anonymous)
                let who: String = switch subject {
                case .user(let name): "user \(name)"
                case .anonymous: "anonymous"
                default: "all clients"
                }
                rules.append(ACLRule(
                    subject: subject, effect: effect, filter: filter, levels: levels,
                    origin: isPattern ? .mosquittoPattern : .mosquittoTopic,
                    source: location,
                    description: "\(location) \(who): \(keyword) \(accessWord) \(filter)",
                    order: firstOrder + rules.count))
            default:
                throw ACLError(source: location, message: "unknown keyword '\(keyword)'; expected user, topic or pattern")
            }
        }
        return rules
    }

    /// The first space- or tab-separated word and what follows it (untrimmed).
    private static func nextWord(_ text: Substring) -> (Substring, Substring) {
        let start = text.firstIndex { $0 != " " && $0 != "\t" } ?? text.endIndex
        let end = text[start...].firstIndex { $0 == " " || $0 == "\t" } ?? text.endIndex
        return (text[start..<end], text[end...])
    }

    /// Mosquitto strips every trailing `isspace` character (CR included).
    private static func trimTrailingWhitespace(_ line: String) -> Substring {
        var end = line.endIndex
        while end > line.startIndex {
            let before = line.index(before: end)
            guard line[before].isWhitespace else { break }
            end = before
        }
        return line[..<end]
    }
}
