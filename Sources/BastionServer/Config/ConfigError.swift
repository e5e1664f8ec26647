/// A configuration problem the operator must fix: the broker exits with status 2 and prints this.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String?
    public var line: Int?
    public var key: String?
    public var message: String
    public var fix: String?

    public init(file: String? = nil, line: Int? = nil, key: String? = nil, _ message: String, fix: String? = nil) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var location = ""
        if let file { location = file + (line.map { ":\($0)" } ?? "") + ": " }
        let keyPart = key.map { "'\($0)': " } ?? ""
        return location + keyPart + message + (fix.map { " (fix: \($0))" } ?? "")
    }
}
