import Testing
@testable import BastionSecurity
import BastionTesting
#if canImport(Glibc)
import Glibc
#endif

/// Written by Debian's `mosquitto_passwd` 2.0.11:
///   mosquitto_passwd -c -b f alice 'correct horse'
///   mosquitto_passwd -b f 'bob smith' 'p@ss:word with spaces'
///   mosquitto_passwd -H sha512 -b f carol 'hunter2'
///   mosquitto_passwd -H sha512 -b f dave 'ünïcødé✓'
///   mosquitto_passwd -b f erin 'x'
let mosquittoPasswdFixture = """
alice:$7$101$NCJ4Gzwcz0k6CcKH$v0/wBZBWN2FzJ687VcHvWmLq/2Wq/WO4EizRbJc6daRpElFPbkDUsrubIXEf2bXb1n6s/wHqX8QU7NhXjNE3JA==
bob smith:$7$101$cft5i2eDnwoOojXc$SCYIainAucA5MkvwNZHhXF3zFnm2uLa+PipuhZVYfs7EE2Z16EF6RIjGhugXWEEU9wUd1cQKspyb981IN3OXKg==
carol:$6$fl8DHTwUCXooyklE$tN7druR5KlO3t3EmO+xeNhlQzSpgoPkyUAaMzs4ofLJhFx+bu3V7JKOaJXEh2WjCrmVX//n+l9rtd7Fa1veWgQ==
dave:$6$bg5jhrhiC7+9Csna$TXTpkTqboCjP4ppw4nYDG6tk3YE6RPDBFY0zi/zFIv3kEKYkesiBvSXH4NiGK1Sqt6/+3vJxnVE71NZ9nmsAyw==
erin:$7$101$VF1aGmh7/E4mIE+n$gJ94ScZ0jM1+jMbWKn9unWjxUB1QfkPnzl7thnqKN0sgaxWR63EZw3y5YZo1Ab7zGXS+/NjTh8/ObdMhRXq9rA==

"""

@Suite("Password file")
struct PasswordFileTests {
    @Test("entries written by mosquitto_passwd verify ($7$ and $6$)")
    func mosquittoFixture() throws {
        let file = try PasswordFile.parse(mosquittoPasswdFixture, source: "passwd")
        #expect(file.usernames == ["alice", "bob smith", "carol", "dave", "erin"])
        #expect(file.verify(username: "alice", password: "correct horse"))
        #expect(file.verify(username: "bob smith", password: "p@ss:word with spaces"))
        #expect(file.verify(username: "carol", password: "hunter2"))
        #expect(file.verify(username: "dave", password: "ünïcødé✓"))
        #expect(file.verify(username: "erin", password: "x"))

        #expect(!file.verify(username: "alice", password: "correct horse "))
        #expect(!file.verify(username: "alice", password: "Correct horse"))
        #expect(!file.verify(username: "carol", password: "hunter3"))
        #expect(!file.verify(username: "carol", password: ""))
        #expect(!file.verify(username: "erin", password: "correct horse"))
    }

    @Test("$6$ and $7$ known answers computed independently (Python hashlib)")
    func independentVectors() throws {
        // salt "0123456789ab"; password "secret"; sha512(password || salt) and pbkdf2_hmac('sha512', …, 1000, 64).
        let text = """
        six:$6$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==
        seven:$7$1000$MDEyMzQ1Njc4OWFi$ZJEeM8haE9d5XdQRkROfY+VNm95TyLII2wMF7gvAreqXSheCQReksJ+3flNZrfPrV1dYquIBGQmTU89cHgTqUg==
        """
        let file = try PasswordFile.parse(text, source: "passwd")
        #expect(file.verify(username: "six", password: "secret"))
        #expect(file.verify(username: "seven", password: "secret"))
        #expect(!file.verify(username: "six", password: "secreT"))
        #expect(!file.verify(username: "seven", password: "secreT"))
        #expect(file.entries.map(\.hash.scheme) == [.sha512, .pbkdf2SHA512(iterations: 1000)])
    }

    @Test("unknown users, missing passwords and wrong passwords all answer false")
    func failuresLookTheSame() throws {
        let file = try PasswordFile.parse(mosquittoPasswdFixture, source: "passwd")
        #expect(!file.verify(username: "mallory", password: "correct horse"))
        #expect(!file.verify(username: "mallory", password: nil))
        #expect(!file.verify(username: "alice", password: nil))
        #expect(!file.verify(username: "", password: ""))
        // HMAC pads keys with zeros, so without a check "x\0" would pass for "x".
        #expect(!file.verify(username: "erin", password: Array("x".utf8) + [0]))
        #expect(!file.verify(username: "alice", password: Array("correct horse".utf8) + [0]))
    }

    @Test("unknown users are checked against a dummy of the file's most common scheme")
    func dummyMatchesCommonScheme() throws {
        let file = try PasswordFile.parse(mosquittoPasswdFixture, source: "passwd")
        #expect(file.dummySchemeForTesting == .pbkdf2SHA512(iterations: 101))
        let sixOnly = try PasswordFile.parse("carol:" + "$6$fl8DHTwUCXooyklE$tN7druR5KlO3t3EmO+xeNhlQzSpgoPkyUAaMzs4ofLJhFx+bu3V7JKOaJXEh2WjCrmVX//n+l9rtd7Fa1veWgQ==", source: "p")
        #expect(sixOnly.dummySchemeForTesting == .sha512)
        #expect(PasswordFile(source: "empty").dummySchemeForTesting == .pbkdf2SHA512(iterations: 50_000))
    }

    @Test("new entries are $7$ with 50000 iterations and a fresh 12-byte salt")
    func makeEntry() throws {
        let entry = try PasswordFile.makeEntry(password: "s3cret")
        let fields = entry.split(separator: "$", omittingEmptySubsequences: false)
        #expect(fields.count == 5)
        #expect(fields[1] == "7")
        #expect(fields[2] == "50000")
        let hash = try PasswordHash(parsing: entry)
        #expect(hash.salt.count == 12)
        #expect(hash.digest.count == 64)
        #expect(hash.matches(Array("s3cret".utf8)))
        #expect(!hash.matches(Array("s3cre".utf8)))
        #expect(try PasswordFile.makeEntry(password: "s3cret") != entry)
        #expect(!hash.isWeak)
    }

    @Test("setPassword, remove and serialized keep comments and order")
    func editing() throws {
        var file = try PasswordFile.parse("# users\n\n" + mosquittoPasswdFixture, source: "passwd")
        let updated = try file.setPassword("new password", for: "carol")
        let added = try file.setPassword("zed's", for: "zed")
        #expect(updated)
        #expect(!added)
        let removed = file.remove(username: "alice")
        let removedAgain = file.remove(username: "alice")
        #expect(removed)
        #expect(!removedAgain)
        let text = file.serialized()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "# users")
        #expect(lines[1] == "")
        #expect(lines[2].hasPrefix("bob smith:$7$101$cft5i2eDnwoOojXc$"))
        #expect(lines[3].hasPrefix("carol:$7$50000$"))
        #expect(text.hasSuffix("\n"))
        let reread = try PasswordFile.parse(text, source: "passwd")
        #expect(reread.usernames == ["bob smith", "carol", "dave", "erin", "zed"])
        #expect(reread.verify(username: "carol", password: "new password"))
        #expect(!reread.verify(username: "carol", password: "hunter2"))
        #expect(reread.verify(username: "zed", password: "zed's"))
        #expect(reread.verify(username: "dave", password: "ünïcødé✓"))
    }

    @Test("weak entries are $6$ and $7$ below 50000 iterations")
    func weakEntries() throws {
        var file = try PasswordFile.parse(mosquittoPasswdFixture, source: "passwd")
        try file.setPassword("strong enough", for: "alice")
        #expect(file.weakEntries.map(\.username) == ["bob smith", "carol", "dave", "erin"])
    }

    @Test("comments, blank lines, CRLF and blanks around fields are accepted")
    func lenientLayout() throws {
        let text = "# comment\r\n\r\n  alice  :  " + "$6$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==" + "  \r\n"
        let file = try PasswordFile.parse(text, source: "passwd")
        #expect(file.usernames == ["alice"])
        #expect(file.verify(username: "alice", password: "secret"))
    }

    @Test("malformed lines are errors naming file and line, without secrets", arguments: [
        ("alice:plaintext-password", "passwd:2", "not a $6$ or $7$ hash"),
        ("no colon here", "passwd:2", "expected USERNAME:HASH"),
        (":$6$MDEyMzQ1Njc4OWFi$AAAA", "passwd:2", "empty username"),
        ("alice:", "passwd:2", "no password hash"),
        ("alice:$7$0$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==", "passwd:2", "iteration count"),
        ("alice:$7$99999999999999999999$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==", "passwd:2", "iteration count"),
        ("alice:$7$abc$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==", "passwd:2", "iteration count"),
        ("alice:$6$%%%$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==", "passwd:2", "salt"),
        ("alice:$6$MDEyMzQ1Njc4OWFi$c2hvcnQ=", "passwd:2", "64 bytes"),
        ("alice:$5$MDEyMzQ1Njc4OWFi$c2hvcnQ=", "passwd:2", "not a $6$ or $7$ hash"),
        ("alice:$6$a$b$c", "passwd:2", "malformed"),
        ("erin:$6$MDEyMzQ1Njc4OWFi$qEXipeLbgxRlwd06QHfY5WITkUZg0jLg9SZbXzq3ifXjfj+v3GbJGrSfC5PAg3UNCS+UFfbhUIZX4bmIAs330w==", "passwd:2", "appears twice"),
    ])
    func malformed(line: String, source: String, fragment: String) throws {
        let text = "erin:$7$101$VF1aGmh7/E4mIE+n$gJ94ScZ0jM1+jMbWKn9unWjxUB1QfkPnzl7thnqKN0sgaxWR63EZw3y5YZo1Ab7zGXS+/NjTh8/ObdMhRXq9rA==\n" + line + "\n"
        let error = #expect(throws: PasswordFileError.self) { try PasswordFile.parse(text, source: "passwd") }
        #expect(error?.source == source)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        #expect(error?.description.contains("plaintext-password") == false)
        #expect(error?.description.contains("qEXipeLbgx") == false)
    }

    @Test("usernames are validated like mosquitto_passwd", arguments: ["", "a:b", "tab\there", "nul\u{0}", "line\nbreak", " lead", "trail ", "#comment"])
    func invalidUsernames(name: String) {
        #expect(throws: PasswordFileError.self) { try PasswordFile.validateUsername(name) }
    }

    @Test("empty passwords are refused")
    func emptyPassword() {
        var file = PasswordFile(source: "p")
        #expect(throws: PasswordFileError.self) { try file.setPassword("", for: "alice") }
    }

    @Test("-U hashes plain-text passwords and keeps existing hashes")
    func hashingPlaintext() throws {
        let plain = """
        # plain
        alice:correct horse
        erin:$7$101$VF1aGmh7/E4mIE+n$gJ94ScZ0jM1+jMbWKn9unWjxUB1QfkPnzl7thnqKN0sgaxWR63EZw3y5YZo1Ab7zGXS+/NjTh8/ObdMhRXq9rA==
        bob:pa:ss
        """
        let result = try PasswordFile.hashingPlaintext(plain, source: "plain")
        #expect(result.hashed == 2)
        #expect(result.kept == 1)
        let file = try PasswordFile.parse(result.file.serialized(), source: "plain")
        #expect(file.verify(username: "alice", password: "correct horse"))
        #expect(file.verify(username: "erin", password: "x"))
        #expect(file.verify(username: "bob", password: "pa:ss"))
        #expect(result.file.serialized().hasPrefix("# plain\nalice:$7$50000$"))
    }

    @Test("write replaces the file atomically with mode 0600")
    func atomicWrite() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/passwd"
        var file = PasswordFile(source: path)
        try file.setPassword("first", for: "alice")
        try file.write(to: path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)

        // Replace an existing, world-readable file: the result is 0600 too.
        #expect(chmod(path, 0o644) == 0)
        var loaded = try PasswordFile.load(path: path)
        #expect(loaded.verify(username: "alice", password: "first"))
        try loaded.setPassword("second", for: "bob")
        try loaded.write(to: path)
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let reread = try PasswordFile.load(path: path)
        #expect(reread.usernames == ["alice", "bob"])
        #expect(reread.verify(username: "bob", password: "second"))
        #expect(directory.entries() == ["passwd"])
    }

    @Test("loading a missing file names the path")
    func missingFile() {
        let error = #expect(throws: PasswordFileError.self) { try PasswordFile.load(path: "/nonexistent/passwd") }
        #expect(error?.source == "/nonexistent/passwd")
    }

    @Test("hash descriptions never show salt or digest")
    func redactedDescription() throws {
        let file = try PasswordFile.parse(mosquittoPasswdFixture, source: "passwd")
        let text = file.entries.map { "\($0.hash)" }.joined()
        #expect(!text.contains("NCJ4Gzwcz0k6CcKH"))
        #expect(text.contains("PBKDF2"))
        for rendered in ["\(file)", String(reflecting: file), String(reflecting: file.entries)] {
            #expect(!rendered.contains("NCJ4Gzwcz0k6CcKH"), "\(rendered)")
            #expect(!rendered.contains("v0/wBZBWN2FzJ"), "\(rendered)")
        }
        var dumped = ""
        dump(file, to: &dumped)
        dump(file.entries, to: &dumped)
        #expect(!dumped.contains("NCJ4Gzwcz0k6CcKH") && !dumped.contains("v0/wBZBWN2FzJ"))
        #expect("\(file)" == "PasswordFile(passwd, 5 users)")
    }
}

extension PasswordFile {
    var dummySchemeForTesting: PasswordHash.Scheme { dummyScheme }
}

