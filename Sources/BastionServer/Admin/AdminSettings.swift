import BastionSecurity
import Foundation

/// The admin HTTP listener, resolved from `admin:` and `--admin-listen`.
public struct AdminSettings: Sendable, Hashable {
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    public var allowRemote: Bool
    /// Bearer token required on every route except /healthz and /readyz.
    public var token: String?

    public static let defaultListen = "http://127.0.0.1:9883"

    public init(host: String, port: Int, allowRemote: Bool = false, token: String? = nil) {
        self.host = host
        self.port = port
        self.allowRemote = allowRemote
        self.token = token
    }

    public var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// True for 127.0.0.0/8, ::1 and "localhost".
    public static func isLoopback(host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        return IPAddress(host)?.isLoopback ?? false
    }

    /// Parses "http://HOST:PORT" (HOST may be a bracketed IPv6 address).
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        guard text.lowercased().hasPrefix("http://") else { return nil }
        var rest = text.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains("/"), let port = Int(portText), (0...65535).contains(port),
              portText.allSatisfy(\.isASCII) else { return nil }
        return (String(host), port)
    }

    /// nil when no admin listener is configured. `flag` is `--admin-listen`.
    public static func resolve(config: AdminConfig?, flag: String?, file: String?) throws(ConfigError) -> AdminSettings? {
        guard config != nil || flag != nil else { return nil }
        let text = flag ?? config?.listen ?? defaultListen
        let key = flag != nil ? "--admin-listen" : "admin.listen"
        let keyFile = flag != nil ? nil : file
        guard let (host, port) = parseListen(text) else {
            throw ConfigError(file: keyFile, key: key, "'\(text)' is not an admin listener URL",
                              fix: "use http://HOST:PORT, e.g. \(defaultListen)")
        }
        let allowRemote = config?.allow_remote ?? false
        var token: String?
        if let path = config?.token_file {
            let contents: String
            do {
                contents = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError(file: file, key: "admin.token_file", "cannot read \(path)", fix: "create the file with a random token of at least 16 characters")
            }
            let trimmed = contents.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.count >= 16, !trimmed.contains(where: { $0.isWhitespace }) else {
                throw ConfigError(file: file, key: "admin.token_file", "the token in \(path) is shorter than 16 characters or contains spaces",
                                  fix: "write a random token, e.g. `openssl rand -hex 32 > \(path)`")
            }
            token = trimmed
        }
        if !isLoopback(host: host) {
            guard allowRemote else {
                throw ConfigError(file: keyFile, key: key, "the admin listener \(text) is not a loopback address",
                                  fix: "bind it to 127.0.0.1 or ::1, or set admin.allow_remote: true with admin.token_file")
            }
            guard token != nil else {
                throw ConfigError(file: file, key: "admin.token_file", "a non-loopback admin listener requires a bearer token",
                                  fix: "set admin.token_file to a file holding a random token")
            }
        }
        return AdminSettings(host: host, port: port, allowRemote: allowRemote, token: token)
    }
}
