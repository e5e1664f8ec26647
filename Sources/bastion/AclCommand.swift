import ArgumentParser
import BastionSecurity
import BastionServer
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `bastion acl check` and `bastion acl lint`.
struct Acl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Check and lint access control lists.",
        subcommands: [Check.self, Lint.self]
    )
}

extension Acl {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Decide one access question and show the rule that decided it.",
            discussion: """
            Prints 'allow (RULE)' or 'deny (RULE)', where RULE names FILE:LINE. Exit status: 0 allow, \
            1 deny, 2 bad usage or a broken ACL file. Without --user the client is anonymous. \
            Patterns with %c apply only when --client is given.
            """
        )

        @Option(name: .customLong("acl-file"), help: "Mosquitto-format ACL file.")
        var aclFile: String?

        @Option(name: .customLong("config"), help: "Broker configuration file (its auth section: acl_file, acl, roles, allowed_clients).")
        var config: String?

        @Option(name: .customLong("password-file"), help: "Password file; warns when --user is not in it.")
        var passwordFile: String?

        @Option(help: "Username (omit for an anonymous client).")
        var user: String?

        @Option(help: "Client id.")
        var client: String = ""

        @Option(name: .customLong("cert"), help: "Certificate identity.")
        var certificate: String?

        @Argument(help: "pub | sub | read")
        var operation: String

        @Argument(help: "Topic name (pub, read) or filter (sub).")
        var topic: String

        func run() async throws {
            let op: AccessOperation
            switch operation {
            case "pub", "publish": op = .publish
            case "sub", "subscribe": op = .subscribe
            case "read", "receive": op = .read
            default:
                fail("unknown operation '\(operation)'; use pub, sub or read")
                throw ExitCode(2)
            }
            let policy = try loadPolicy(config: config, aclFile: aclFile)
            if let passwordFile, let user {
                do {
                    if !(try PasswordFile.load(path: passwordFile).contains(username: user)) {
                        fail("warning: user '\(user)' is not in \(passwordFile)")
                    }
                } catch {
                    fail(error.description)
                    throw ExitCode(2)
                }
            }
            // As the broker does: client-id grants count only for a client id bound to the identity.
            let identity = policy.bound(Identity(username: user, clientID: client, certificateIdentity: certificate))
            let decision = policy.decide(identity, op, topic)
            print(decision.description)
            if !decision.allowed { throw ExitCode(1) }
        }
    }

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lint",
            abstract: "Warn about likely mistakes in an ACL file.",
            discussion: """
            Warns about grants of '#' or a top-level '+', rules that can never decide, users of the \
            password file to whom no rule applies, publish grants on $SYS, and Mosquitto-file rules \
            that Bastion's precedence reads differently. Exit status: 0 (warnings are printed), \
            2 for a broken file, or with --strict for any warning. Weak password hashes are shown \
            as notes and do not count as warnings.
            """
        )

        @Option(name: .customLong("acl-file"), help: "Mosquitto-format ACL file.")
        var aclFile: String?

        @Option(name: .customLong("config"), help: "Broker configuration file (its auth section).")
        var config: String?

        @Option(name: .customLong("password-file"), help: "Password file: its users should each have a rule.")
        var passwordFile: String?

        @Flag(help: "Treat warnings as errors (exit 2).")
        var strict = false

        func run() async throws {
            let policy = try loadPolicy(config: config, aclFile: aclFile)
            var knownUsers: [String] = []
            if let passwordFile {
                do {
                    let passwords = try PasswordFile.load(path: passwordFile)
                    knownUsers = passwords.usernames
                    for entry in passwords.weakEntries {
                        print("\(passwordFile): note: user '\(entry.username)' has a weak hash, \(entry.hash); set it again with 'bastion passwd'")
                    }
                } catch {
                    fail(error.description)
                    throw ExitCode(2)
                }
            }
            let warnings = policy.lint(knownUsers: knownUsers)
            for warning in warnings { print(warning.description) }
            if warnings.isEmpty {
                print("\(aclFile ?? config ?? "acl"): \(policy.ruleCount) rule(s), no warnings")
            } else {
                print("\(warnings.count) warning(s)")
                if strict { throw ExitCode(2) }
            }
        }
    }
}

private func fail(_ message: String) {
    var bytes = Array((message + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

/// The policy from --config and/or --acl-file, as the broker would load it; exits 2 when neither
/// gives one or it does not load.
private func loadPolicy(config: String?, aclFile: String?) throws -> AccessPolicy {
    guard config != nil || aclFile != nil else {
        fail("give --acl-file FILE or --config FILE")
        throw ExitCode(2)
    }
    do {
        guard let policy = try AccessConfiguration.load(configPath: config, aclFile: aclFile, passwordFile: nil).policy else {
            fail("\(config ?? "the configuration") defines no access rules: every authenticated client may use every topic except $SYS")
            throw ExitCode(2)
        }
        return policy
    } catch let error as ConfigError {
        fail(error.description)
        throw ExitCode(2)
    }
}
