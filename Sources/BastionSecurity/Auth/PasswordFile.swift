/// A Mosquitto password file: one `USERNAME:HASH` line per user, `#` comments, blank lines.
///
/// Reading follows Mosquitto 2.x (`src/security_default.c`): the username is the text before the
/// first `:`, the hash the text up to the next `:`, both trimmed of blanks. Where Mosquitto logs and
/// skips a bad line, Bastion refuses the file and names the line, so a typo never silently locks a
/// user out or leaves a plain-text password in place.
///
/// `verify` is synchronous, `Sendable`, and costs the same for unknown users as for known ones.
public struct PasswordFile: Sendable {
    public struct Entry: Sendable, Hashable {
        public var username: String
        public var hash: PasswordHash
    }

    /// File lines in order, so that rewriting keeps comments and the order of other users.
    enum Line: Sendable, Hashable {
        case entry(username: String)
        case other(String)
    }

    /// Where the file came from (its path), used in error messages.
    public let source: String
    private(set) var lines: [Line]
    private var hashes: [String: PasswordHash]
    /// Checked for unknown users; shaped like the file's most common scheme (see `verify`).
    private var dummy: PasswordHash

    /// An empty file (what `bastion passwd -c` starts from).
    public init(source: String) {
        self.source = source
        self.lines = []
        self.hashes = [:]
        self.dummy = PasswordHash.dummy(.pbkdf2SHA512(iterations: PasswordHash.recommendedIterations))
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(PasswordFileError) -> PasswordFile {
        let text: String
        do {
            text = try FileIO.readText(path)
        } catch {
            throw PasswordFileError(source: path, message: "cannot read password file: \(error)")
        }
        return try parse(text, source: path)
    }

    /// Parses password file text. `source` names the file in errors (`source:LINE: …`).
    public static func parse(_ text: String, source: String) throws(PasswordFileError) -> PasswordFile {
        var file = PasswordFile(source: source)
        for (index, raw) in splitLines(text).enumerated() {
            let lineNumber = index + 1
            let where_ = "\(source):\(lineNumber)"
            let trimmed = trimBlanks(raw[...])
            if trimmed.isEmpty || raw.hasPrefix("#") {
                file.lines.append(.other(raw))
                continue
            }
            guard let colon = raw.firstIndex(of: ":") else {
                throw PasswordFileError(source: where_, message: "expected USERNAME:HASH")
            }
            let username = String(trimBlanks(raw[..<colon]))
            let rest = raw[raw.index(after: colon)...]
            let hashText = trimBlanks(rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            guard !username.isEmpty else {
                throw PasswordFileError(source: where_, message: "empty username")
            }
            guard !hashText.isEmpty else {
                throw PasswordFileError(source: where_, message: "user '\(username)' has no password hash")
            }
            guard file.hashes[username] == nil else {
                throw PasswordFileError(source: where_, message: "user '\(username)' appears twice")
            }
            let hash: PasswordHash
            do {
                hash = try PasswordHash(parsing: String(hashText))
            } catch {
                throw PasswordFileError(source: where_, message: "user '\(username)': \(Self.explain(error))")
            }
            file.hashes[username] = hash
            file.lines.append(.entry(username: username))
        }
        file.refreshDummy()
        return file
    }

    // MARK: Queries

    /// Usernames in file order.
    public var usernames: [String] {
        lines.compactMap { if case .entry(let name) = $0 { name } else { nil } }
    }

    /// Entries in file order.
    public var entries: [Entry] {
        usernames.compactMap { name in hashes[name].map { Entry(username: name, hash: $0) } }
    }

    public func contains(username: String) -> Bool { hashes[username] != nil }

    /// The user's SCRAM stored keys for `algorithm`, when the entry is of that scheme.
    public func scramKeys(for username: String, algorithm: ScramAlgorithm) -> ScramStoredKeys? {
        guard let keys = hashes[username]?.scramKeys, keys.algorithm == algorithm else { return nil }
        return keys
    }

    /// Iterations the file's SCRAM entries of `algorithm` use most (the RFC minimum when none),
    /// so an exchange for an unknown user offers what a real one would.
    public func typicalScramIterations(_ algorithm: ScramAlgorithm) -> Int {
        var counts: [Int: Int] = [:]
        for hash in hashes.values {
            if case .scram(algorithm, let iterations) = hash.scheme { counts[iterations, default: 0] += 1 }
        }
        return counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? ScramStoredKeys.recommendedIterations
    }

    /// The scheme unknown users are checked against.
    var dummyScheme: PasswordHash.Scheme { dummy.scheme }

    /// Checks a password. Unknown users and missing passwords are checked against a dummy hash of
    /// the file's most common scheme, so every failure costs about what a wrong password costs and
    /// all failures look the same (`false`). CPU-heavy by design: run it off the event loop.
    ///
    /// A password containing a NUL byte never matches: no entry can have been made from one
    /// (both `mosquitto_passwd` and `bastion passwd` take C strings), and HMAC would otherwise
    /// treat `secret` and `secret\0` alike.
    public func verify(username: String, password: [UInt8]?) -> Bool {
        let stored = hashes[username]
        let matched = (stored ?? dummy).matches(password ?? [])
        let usable = password.map { !$0.contains(0) } ?? false
        return matched && stored != nil && usable
    }

    public func verify(username: String, password: String) -> Bool {
        verify(username: username, password: Array(password.utf8))
    }

    /// Entries whose hash is weaker than what `bastion passwd` writes (`$6$`, or `$7$` with fewer
    /// than `PasswordHash.recommendedIterations` iterations).
    public var weakEntries: [Entry] { entries.filter(\.hash.isWeak) }

    // MARK: Editing (used by `bastion passwd`)

    /// A `$7$` entry value (`$7$50000$SALT$HASH`) for `password`, readable by Mosquitto 2.x.
    public static func makeEntry(password: String) throws -> String {
        try PasswordHash.make(password: Array(password.utf8)).encoded
    }

    /// Usernames must be non-empty, at most 65535 bytes, without `:` or control characters
    /// (the rules `mosquitto_passwd` applies).
    public static func validateUsername(_ username: String) throws(PasswordFileError) {
        guard !username.isEmpty else {
            throw PasswordFileError(source: "username", message: "must not be empty")
        }
        guard username.utf8.count <= 65535 else {
            throw PasswordFileError(source: "username", message: "must be less than 65536 bytes long")
        }
        guard !username.contains(":") else {
            throw PasswordFileError(source: "username", message: "must not contain ':'")
        }
        guard !username.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw PasswordFileError(source: "username", message: "must not contain control characters")
        }
        guard trimBlanks(username[...]).count == username.count, !username.hasPrefix("#") else {
            throw PasswordFileError(source: "username", message: "must not start with '#' or start or end with blanks")
        }
    }

    /// Adds or replaces `username`'s entry with a new `$7$` hash of `password`.
    /// Returns true when the user already existed.
    @discardableResult
    public mutating func setPassword(_ password: String, for username: String, scram: ScramAlgorithm? = nil) throws -> Bool {
        try Self.validateUsername(username)
        guard !password.isEmpty else {
            throw PasswordFileError(source: "password", message: "must not be empty")
        }
        guard password.utf8.count <= 65535 else {
            throw PasswordFileError(source: "password", message: "must be less than 65536 bytes long")
        }
        let hash = try scram.map { try PasswordHash.makeScram(password: Array(password.utf8), algorithm: $0) }
            ?? PasswordHash.make(password: Array(password.utf8))
        return set(hash, for: username)
    }

    /// Removes a user; returns false when there was none.
    @discardableResult
    public mutating func remove(username: String) -> Bool {
        guard hashes.removeValue(forKey: username) != nil else { return false }
        lines.removeAll { $0 == .entry(username: username) }
        refreshDummy()
        return true
    }

    @discardableResult
    mutating func set(_ hash: PasswordHash, for username: String) -> Bool {
        let existed = hashes[username] != nil
        hashes[username] = hash
        if !existed { lines.append(.entry(username: username)) }
        refreshDummy()
        return existed
    }

    /// The file text: comments and blank lines kept, one `USERNAME:HASH` per user, newline-terminated.
    public func serialized() -> String {
        var out = ""
        for line in lines {
            switch line {
            case .entry(let name):
                guard let hash = hashes[name] else { continue }
                out += "\(name):\(hash.encoded)\n"
            case .other(let text):
                out += text + "\n"
            }
        }
        return out
    }

    /// Writes `serialized()` to `path` atomically (temporary file, fsync, rename) with mode 0600.
    public func write(to path: String) throws(PasswordFileError) {
        do {
            try FileIO.writeAtomically(serialized(), to: path, mode: 0o600)
        } catch {
            throw PasswordFileError(source: path, message: "cannot write password file: \(error)")
        }
    }

    /// Reads a plain-text `USERNAME:PASSWORD` file and hashes it (see `hashingPlaintext`).
    public static func hashingPlaintextFile(path: String) throws(PasswordFileError) -> (file: PasswordFile, hashed: Int, kept: Int) {
        let text: String
        do {
            text = try FileIO.readText(path)
        } catch {
            throw PasswordFileError(source: path, message: "cannot read password file: \(error)")
        }
        return try hashingPlaintext(text, source: path)
    }

    /// Hashes a plain-text `USERNAME:PASSWORD` file (`bastion passwd -U`). Lines that already hold a
    /// valid `$6$`/`$7$` hash are kept as they are, so running it twice does not hash a hash.
    public static func hashingPlaintext(_ text: String, source: String) throws(PasswordFileError) -> (file: PasswordFile, hashed: Int, kept: Int) {
        var file = PasswordFile(source: source)
        var hashed = 0
        var kept = 0
        for (index, raw) in splitLines(text).enumerated() {
            let where_ = "\(source):\(index + 1)"
            if trimBlanks(raw[...]).isEmpty || raw.hasPrefix("#") {
                file.lines.append(.other(raw))
                continue
            }
            guard let colon = raw.firstIndex(of: ":") else {
                throw PasswordFileError(source: where_, message: "expected USERNAME:PASSWORD")
            }
            let username = String(trimBlanks(raw[..<colon]))
            let secret = String(trimBlanks(raw[raw.index(after: colon)...]))
            guard !username.isEmpty, !secret.isEmpty else {
                throw PasswordFileError(source: where_, message: "empty username or password")
            }
            guard !file.contains(username: username) else {
                throw PasswordFileError(source: where_, message: "user '\(username)' appears twice")
            }
            if let existing = try? PasswordHash(parsing: secret) {
                file.set(existing, for: username)
                kept += 1
            } else {
                do {
                    file.set(try PasswordHash.make(password: Array(secret.utf8)), for: username)
                } catch {
                    throw PasswordFileError(source: where_, message: "cannot hash password for user '\(username)'")
                }
                hashed += 1
            }
        }
        return (file, hashed, kept)
    }

    // MARK: Helpers

    /// Unknown users are checked against a hash of the scheme most entries use, so the common
    /// case costs the same whether or not the user exists.
    private mutating func refreshDummy() {
        var counts: [PasswordHash.Scheme: Int] = [:]
        for hash in hashes.values { counts[hash.scheme, default: 0] += 1 }
        let common = counts.max { a, b in
            a.value != b.value ? a.value < b.value : Self.cost(a.key) < Self.cost(b.key)
        }?.key ?? .pbkdf2SHA512(iterations: PasswordHash.recommendedIterations)
        if dummy.scheme != common { dummy = PasswordHash.dummy(common) }
    }

    private static func cost(_ scheme: PasswordHash.Scheme) -> Int {
        switch scheme {
        case .sha512: 0
        case .pbkdf2SHA512(let iterations): iterations
        case .scram(_, let iterations): iterations
        }
    }

    private static func explain(_ error: PasswordHash.ParseError) -> String {
        switch error {
        case .unknownScheme: "not a $6$ or $7$ hash, nor SCRAM stored keys (a plain-text file? hash it with 'bastion passwd -U FILE')"
        case .malformed: "malformed password hash"
        case .badIterations: "iteration count must be 1...\(PasswordHash.maximumIterations)"
        case .badSalt: "salt is not valid base64"
        case .badDigest: "hash is not 64 bytes of base64 (SCRAM keys: 32 bytes for SHA-256, 64 for SHA-512)"
        }
    }
}

/// Splits on `\n`, dropping one trailing `\r` per line and the empty piece after a final newline.
/// Works on bytes: as Characters, "\r\n" is one grapheme and would not split on "\n".
func splitLines(_ text: String) -> [String] {
    var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
        let bytes = line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...]
        return String(decoding: bytes, as: UTF8.self)
    }
    if lines.last == "" { lines.removeLast() }
    return lines
}

/// Trims spaces and tabs (Mosquitto's `trimblanks`).
func trimBlanks(_ text: Substring) -> Substring {
    var start = text.startIndex
    var end = text.endIndex
    while start < end, text[start] == " " || text[start] == "\t" { start = text.index(after: start) }
    while end > start {
        let before = text.index(before: end)
        guard text[before] == " " || text[before] == "\t" else { break }
        end = before
    }
    return text[start..<end]
}

extension PasswordFile: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Names the file and counts users; never prints hashes or file lines.
    public var description: String { "PasswordFile(\(source), \(hashes.count) users)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
