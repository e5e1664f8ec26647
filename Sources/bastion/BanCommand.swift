import ArgumentParser
import BastionAdmin
import BastionServer
import Foundation

struct Ban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ban",
        abstract: "List, add and remove bans on a running broker (through its admin listener).",
        discussion: """
            The broker must run with an admin listener (--admin-listen or admin.listen). The bearer token
            defaults to DATA/admin-token (the one the broker generates), the CA for https:// to
            DATA/tls/ca.pem (the development CA). Bans listed in the configuration file are shown but can
            only be removed by editing the file.
            Exit status: 0 ok, 1 the broker could not be reached or refused, 2 bad usage.
            """,
        subcommands: [List.self, Add.self, Remove.self])
}

struct AdminConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Admin listener URL (default $BASTION_ADMIN or \(AdminSettings.defaultListen)).")
    var admin: String?

    @Option(name: .customLong("token-file"), help: "File holding the admin bearer token (default $BASTION_ADMIN_TOKEN_FILE or DATA/admin-token).")
    var tokenFile: String?

    @Option(name: .customLong("cafile"), help: "CA bundle for an https:// admin listener (default $BASTION_ADMIN_CA or DATA/tls/ca.pem).")
    var caFile: String?

    @Option(name: .customLong("data-dir"), help: "The broker's data directory, where the defaults above are found (default data).")
    var dataDir: String = "data"

    func client() throws -> AdminClient {
        let environment = ProcessInfo.processInfo.environment
        let url = admin ?? environment["BASTION_ADMIN"] ?? AdminSettings.defaultListen
        var token: String?
        let defaultToken = (dataDir as NSString).appendingPathComponent("admin-token")
        let tokenPath = tokenFile ?? environment["BASTION_ADMIN_TOKEN_FILE"]
            ?? (FileManager.default.fileExists(atPath: defaultToken) ? defaultToken : nil)
        if let tokenPath {
            guard let text = try? String(contentsOfFile: tokenPath, encoding: .utf8) else {
                throw usage("cannot read the token file \(tokenPath)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let defaultCA = (dataDir as NSString).appendingPathComponent("tls/ca.pem")
        let ca = caFile ?? environment["BASTION_ADMIN_CA"] ?? (FileManager.default.fileExists(atPath: defaultCA) ? defaultCA : nil)
        do {
            return try AdminClient(url: url, token: token, caFile: ca)
        } catch {
            throw usage(error.description)
        }
    }
}

struct BanSubjectOptions: ParsableArguments {
    @Option(name: .long, help: "An IP address or CIDR block.")
    var ip: String?

    @Option(name: .long, help: "A user name.")
    var user: String?

    @Option(name: .long, help: "A client id.")
    var client: String?

    /// (API kind, value)
    func subject() throws -> (kind: String, value: String) {
        let given = [ip.map { ($0.contains("/") ? "cidr" : "ip", $0) }, user.map { ("user", $0) }, client.map { ("client_id", $0) }]
            .compactMap { $0 }
        guard given.count == 1, let subject = given.first else {
            throw usage("name exactly one of --ip, --user or --client")
        }
        return subject
    }
}

/// Prints `message` and exits with status 2 (bad usage).
private func usage(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("bastion ban: \(message)\n".utf8))
    return ExitCode(2)
}

/// Prints a runtime failure and exits with status 1.
private func failure(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("bastion ban: \(error)\n".utf8))
    return ExitCode(1)
}

extension Ban {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the bans in force.")

        @OptionGroup var connection: AdminConnectionOptions

        @Flag(name: .long, help: "Print the admin API's JSON.")
        var json = false

        func run() async throws {
            let client = try connection.client()
            let bans: [BanAPI.Ban]
            do {
                bans = try await client.listBans()
            } catch {
                throw failure(error)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(bans), as: UTF8.self))
                return
            }
            guard !bans.isEmpty else {
                print("no bans")
                return
            }
            var rows = [["TYPE", "SUBJECT", "ORIGIN", "EXPIRES", "NOTE"]]
            for ban in bans {
                let expires = ban.permanent ? "never" : (ban.expires_at ?? "?") + ban.expires_in_seconds.map { " (in \(Int($0.rounded(.up)))s)" }.orEmpty
                rows.append([ban.type, ban.value, ban.origin, expires, ban.note ?? ""])
            }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces))
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban an address, a CIDR block, a user name or a client id.")

        @OptionGroup var connection: AdminConnectionOptions
        @OptionGroup var subject: BanSubjectOptions

        @Option(name: .long, help: "How long: seconds, or with a unit (90s, 15m, 2h, 7d). Default: until removed.")
        var duration: String?

        @Option(name: .long, help: "A note kept with the ban.")
        var reason: String?

        func run() async throws {
            let (kind, value) = try subject.subject()
            var request = BanAPI.BanRequest(reason: reason)
            switch kind {
            case "ip": request.ip = value
            case "cidr": request.cidr = value
            case "user": request.user = value
            default: request.client_id = value
            }
            if let duration {
                guard let seconds = parseDuration(duration) else {
                    throw usage("--duration '\(duration)' is not a duration like 3600, 90s, 15m, 2h or 7d")
                }
                request.duration_seconds = seconds
            }
            let client = try connection.client()
            let ban: BanAPI.Ban
            do {
                ban = try await client.addBan(request)
            } catch {
                throw failure(error)
            }
            print("banned \(ban.type) \(ban.value)" + (ban.permanent ? " until removed" : " until \(ban.expires_at ?? "?")"))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a ban.")

        @OptionGroup var connection: AdminConnectionOptions
        @OptionGroup var subject: BanSubjectOptions

        func run() async throws {
            let (kind, value) = try subject.subject()
            let client = try connection.client()
            do {
                try await client.removeBan(kind: kind, value: value)
            } catch {
                throw failure(error)
            }
            print("unbanned \(kind == "user" ? "username" : kind) \(value)")
        }
    }
}

/// "3600", "90s", "15m", "2h", "7d" → seconds.
func parseDuration(_ text: String) -> Double? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    var number = Substring(text)
    var scale = 1.0
    if let last = text.last, let unit = units[last] {
        number = number.dropLast()
        scale = unit
    }
    guard let value = Double(number), value.isFinite, value > 0 else { return nil }
    return value * scale
}

private extension Optional where Wrapped == String {
    var orEmpty: String { self ?? "" }
}
