import ArgumentParser
import BastionSecurity
import Foundation

/// `bastion certs`: a small CA for development and small fleets. See docs/tls.md.
struct Certs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create a CA, issue server and client certificates, revoke them and publish CRLs.",
        discussion: """
            Files live in --dir (default ./pki): ca.pem, ca.key (0600), index.json (issued and revoked \
            serials), crl.pem, server.pem/server.key and clients/NAME.pem/NAME.key. Keys are P-256 and \
            written with mode 0600.
            """,
        subcommands: [CertsInit.self, CertsServer.self, CertsClient.self, CertsRevoke.self, CertsCRL.self, CertsList.self]
    )
}

struct PKIDirectoryOption: ParsableArguments {
    @Option(name: .long, help: "The PKI directory.")
    var dir: String = "./pki"

    var pki: PKIDirectory { PKIDirectory(path: dir) }
}

/// Runs `body`, printing PKI errors as one line on stderr with the exit code DESIGN.md assigns.
private func runPKI(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as PKIError {
        FileHandle.standardError.write(Data("bastion certs: \(error.message)\n".utf8))
        switch error.kind {
        case .invalidArgument, .alreadyExists, .notFound, .keyPermissions, .keyMismatch:
            throw ExitCode(2)
        default:
            throw ExitCode(1)
        }
    }
}

private func formatDate(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

struct CertsInit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create the CA (P-256, 10 years).")

    @OptionGroup var directory: PKIDirectoryOption

    @Option(name: .long, help: "Common name of the CA.")
    var cn: String = "Bastion CA"

    @Option(name: .long, help: "Lifetime in days.")
    var days: Int = CertificateIssuer.caLifetimeDays

    @Option(name: .long, help: "URL where crl.pem will be published; written into every certificate issued.")
    var crlUrl: String?

    @Flag(name: .long, help: "Replace an existing CA (everything it issued stops working).")
    var force = false

    func run() throws {
        try runPKI {
            guard days > 0 else { throw PKIError(.invalidArgument, "--days must be positive") }
            let pki = directory.pki
            let ca = try pki.initialize(commonName: cn, days: days, crlURL: crlUrl, now: Date(), force: force)
            print("CA created: \(pki.caCertificateFile) (key \(pki.caKeyFile), mode 0600)")
            print("  subject \(ca.subject), valid until \(formatDate(ca.notValidAfter))")
            print("  empty CRL: \(pki.crlFile)")
            print("Next: bastion certs server --dir \(pki.path) --san HOST")
        }
    }
}

struct CertsServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Issue a server certificate (397 days).",
        discussion: "Each --san is DNS:NAME, IP:ADDRESS, URI:URI or email:ADDRESS; a bare value is an IP address if it parses as one, else a DNS name."
    )

    @OptionGroup var directory: PKIDirectoryOption

    @Option(name: .long, help: "Subject alternative name (repeatable); the first is also the CN.")
    var san: [String] = []

    @Option(name: .long, help: "Base name of the files written in --dir.")
    var name: String = "server"

    @Option(name: .long, help: "Lifetime in days.")
    var days: Int = CertificateIssuer.serverLifetimeDays

    @Flag(name: .long, help: "Replace existing files of the same name.")
    var force = false

    func run() throws {
        try runPKI {
            guard !san.isEmpty else {
                throw PKIError(.invalidArgument, "give at least one --san (e.g. --san broker.example --san 10.0.0.5)")
            }
            guard days > 0 else { throw PKIError(.invalidArgument, "--days must be positive") }
            let names = try san.map { try SubjectAltName($0) }
            let issued = try directory.pki.issueServer(names: names, fileName: name, days: days, now: Date(), force: force)
            print("server certificate: \(issued.certificateFile)")
            print("key:                \(issued.keyFile) (mode 0600)")
            print("serial \(issued.serial), names \(names.map(\.description).joined(separator: ", ")), valid until \(formatDate(issued.notAfter))")
            print("Use: bastion serve --listen mqtts://0.0.0.0:8883 --tls-cert \(issued.certificateFile) --tls-key \(issued.keyFile)")
        }
    }
}

struct CertsClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Issue a client certificate with subject CN=NAME (1 year)."
    )

    @OptionGroup var directory: PKIDirectoryOption

    @Argument(help: "The client's name: the certificate CN and, with identity_from: cn, its MQTT user name.")
    var name: String

    @Option(name: .long, help: "Subject alternative name (repeatable): DNS:…, URI:…, email:…, IP:….")
    var san: [String] = []

    @Option(name: .long, help: "Lifetime in days.")
    var days: Int = CertificateIssuer.clientLifetimeDays

    @Flag(name: .long, help: "Replace existing files of the same name.")
    var force = false

    func run() throws {
        try runPKI {
            guard days > 0 else { throw PKIError(.invalidArgument, "--days must be positive") }
            let names = try san.map { try SubjectAltName($0) }
            let pki = directory.pki
            let issued = try pki.issueClient(commonName: name, names: names, days: days, now: Date(), force: force)
            print("client certificate: \(issued.certificateFile)")
            print("key:                \(issued.keyFile) (mode 0600)")
            print("serial \(issued.serial), valid until \(formatDate(issued.notAfter))")
            print("Use: mosquitto_pub --cafile \(pki.caCertificateFile) --cert \(issued.certificateFile) --key \(issued.keyFile) …")
        }
    }
}

struct CertsRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a certificate by serial and rewrite crl.pem."
    )

    @OptionGroup var directory: PKIDirectoryOption

    @Argument(help: "Serial number in hex, as printed by `bastion certs list` or `openssl x509 -serial`.")
    var serial: String

    @Option(name: .long, help: "Validity of the new CRL in days.")
    var crlDays: Int = PKIDirectory.crlLifetimeDays

    func run() throws {
        try runPKI {
            let pki = directory.pki
            switch try pki.revoke(serialHex: serial, now: Date()) {
            case .revoked(let entry):
                print("revoked \(entry.serial) (\(entry.subject))")
            case .alreadyRevoked(let entry):
                print("\(entry.serial) (\(entry.subject)) was already revoked")
            }
            let path = try pki.writeCRL(now: Date(), days: crlDays)
            print("CRL written: \(path); send SIGHUP to the broker to apply it")
        }
    }
}

struct CertsCRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl",
        abstract: "Write a fresh crl.pem listing every revoked serial (90 days)."
    )

    @OptionGroup var directory: PKIDirectoryOption

    @Option(name: .long, help: "Validity (next update) in days.")
    var days: Int = PKIDirectory.crlLifetimeDays

    func run() throws {
        try runPKI {
            guard days > 0 else { throw PKIError(.invalidArgument, "--days must be positive") }
            let path = try directory.pki.writeCRL(now: Date(), days: days)
            let revoked = try directory.pki.readIndex().certificates.filter { $0.revokedAt != nil }.count
            print("CRL written: \(path) (\(revoked) revoked, next update in \(days) days)")
        }
    }
}

struct CertsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List issued certificates.")

    @OptionGroup var directory: PKIDirectoryOption

    func run() throws {
        try runPKI {
            let pki = directory.pki
            guard PKIFiles.exists(pki.caCertificateFile) else {
                throw PKIError(.notFound, "no CA in \(pki.path); create one with: bastion certs init --dir \(pki.path)")
            }
            let index = try pki.readIndex()
            for entry in index.certificates {
                let status = entry.revokedAt.map { "revoked \(formatDate($0))" } ?? "valid until \(formatDate(entry.notAfter))"
                print("\(entry.serial)  \(entry.kind.rawValue)  \(entry.subject)  \(status)")
            }
        }
    }
}
