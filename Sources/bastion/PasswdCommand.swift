import ArgumentParser
import BastionSecurity
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `bastion passwd`: mosquitto_passwd's options and file format; new entries are `$7$` (PBKDF2-SHA512)
/// with 50,000 iterations, which Mosquitto 2.x reads too.
struct Passwd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Manage a password file (Mosquitto format).",
        usage: """
        bastion passwd [-c] [--scram sha-256|sha-512] FILE USER
        bastion passwd [-c] [--scram sha-256|sha-512] -b FILE USER PASSWORD
        bastion passwd -D FILE USER
        bastion passwd -U FILE
        """,
        discussion: """
        Without -b the password is read twice from the terminal without echo. The file is replaced \
        atomically and left with mode 0600. -U hashes a file of USERNAME:PASSWORD lines in place \
        (lines that already hold a hash are kept). --scram writes SCRAM stored keys \
        ($scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY), which serve both plain passwords and \
        MQTT 5.0 enhanced authentication (SCRAM-SHA-256 / SCRAM-SHA-512); Mosquitto cannot read them.
        """
    )

    @Flag(name: .customShort("c"), help: "Create a new password file, overwriting an existing one.")
    var create = false

    @Flag(name: .customShort("b"), help: "Batch mode: take the password from the command line.")
    var batch = false

    @Flag(name: .customShort("D"), help: "Delete the user.")
    var delete = false

    @Flag(name: .customShort("U"), help: "Hash the plain-text passwords of a USERNAME:PASSWORD file.")
    var update = false

    @Option(name: .customLong("scram"), help: ArgumentHelp("Write SCRAM stored keys for this mechanism instead of a $7$ hash.", valueName: "sha-256|sha-512"))
    var scram: String?

    /// FILE USER [PASSWORD], taken verbatim once the first one is seen (options come first, as
    /// with mosquitto_passwd), so that a password like `-hx` is not read as options.
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The password file, the username, and with -b the password.", valueName: "FILE USER [PASSWORD]"))
    var positional: [String] = []

    var file: String { positional.first ?? "" }
    var scramAlgorithm: ScramAlgorithm? {
        switch scram?.lowercased() {
        case "sha-256"?, "scram-sha-256"?: .sha256
        case "sha-512"?, "scram-sha-512"?: .sha512
        default: nil
        }
    }
    var username: String? { positional.count > 1 ? positional[1] : nil }
    var password: String? { positional.count > 2 ? positional[2] : nil }

    func run() async throws {
        // The passthrough capture also takes `--help` once it comes first.
        if let first = positional.first, first == "-h" || first == "--help" {
            print(Self.helpMessage())
            return
        }
        try checkUsage()
        if update { return try hashPlaintextFile() }
        guard let username else { throw usage("a username is required") }
        do {
            try PasswordFile.validateUsername(username)
        } catch {
            throw failure("username \(error.message)", code: 2)
        }
        if delete { return try deleteUser(username) }
        try setPassword(for: username)
    }

    private func checkUsage() throws {
        if positional.isEmpty { throw usage("the password file is required") }
        if positional.count > 3 { throw usage("too many arguments") }
        if create && delete { throw usage("-c and -D cannot be used together") }
        if create && update { throw usage("-c and -U cannot be used together") }
        if delete && update { throw usage("-D and -U cannot be used together") }
        if delete && batch { throw usage("-b and -D cannot be used together") }
        if scram != nil && (delete || update) { throw usage("--scram applies to setting a password") }
        if let scram, scramAlgorithm == nil { throw usage("--scram takes sha-256 or sha-512, not \(scram)") }
        if update {
            if batch || username != nil { throw usage("-U takes only the password file") }
            return
        }
        if username == nil { throw usage("FILE and USER are required") }
        if batch && password == nil { throw usage("-b needs FILE USER PASSWORD") }
        if !batch && password != nil { throw usage("a password on the command line needs -b") }
    }

    private func hashPlaintextFile() throws {
        do {
            let result = try PasswordFile.hashingPlaintextFile(path: file)
            try result.file.write(to: file)
            print("Hashed \(result.hashed) password(s); \(result.kept) already hashed.")
        } catch {
            throw failure(error.description, code: 1)
        }
    }

    private func deleteUser(_ username: String) throws {
        var passwords = try loadExisting()
        guard passwords.remove(username: username) else {
            throw failure("user \(username) not found in \(file)", code: 1)
        }
        try write(passwords)
        print("Deleted user \(username)")
    }

    private func setPassword(for username: String) throws {
        var passwords = create ? PasswordFile(source: file) : try loadExisting()
        let secret: String
        if batch, let password {
            secret = password
        } else {
            secret = try promptTwice()
        }
        let existed: Bool
        do {
            existed = try passwords.setPassword(secret, for: username, scram: scramAlgorithm)
        } catch let error as PasswordFileError {
            throw failure("\(error.source) \(error.message)", code: 2)
        } catch {
            throw failure("cannot hash the password", code: 1)
        }
        try write(passwords)
        print(existed ? "Updating password for user \(username)" : "Adding password for user \(username)")
    }

    private func loadExisting() throws -> PasswordFile {
        guard access(file, F_OK) == 0 else {
            throw failure("\(file) does not exist; use -c to create it", code: 1)
        }
        do {
            return try PasswordFile.load(path: file)
        } catch {
            throw failure(error.description, code: 1)
        }
    }

    private func write(_ passwords: PasswordFile) throws {
        do {
            try passwords.write(to: file)
        } catch {
            throw failure(error.description, code: 1)
        }
    }

    private func promptTwice() throws -> String {
        let first = try TerminalPassword.read(prompt: "Password: ")
        let second = try TerminalPassword.read(prompt: "Reenter password: ")
        guard first == second else { throw failure("passwords do not match", code: 1) }
        guard !first.isEmpty else { throw failure("empty password", code: 1) }
        return first
    }

    private func usage(_ message: String) -> ExitCode {
        failure(message + "\nUsage: bastion passwd [-c] [-b] [-D] FILE USER [PASSWORD] | bastion passwd -U FILE", code: 2)
    }

    private func failure(_ message: String, code: Int32) -> ExitCode {
        printError("Error: " + message)
        return ExitCode(code)
    }
}

/// Reads a line from standard input with terminal echo switched off (termios).
private enum TerminalPassword {
    struct NoInput: Error, CustomStringConvertible {
        var description: String { "no password read" }
    }

    static func read(prompt: String) throws -> String {
        printError(prompt, terminator: "")
        let input = STDIN_FILENO
        var original = termios()
        let isTerminal = isatty(input) == 1 && tcgetattr(input, &original) == 0
        if isTerminal {
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            // If interrupted while echo is off, switch it back on before exiting. The handler
            // captures nothing and calls only async-signal-safe functions.
            signal(SIGINT) { _ in
                var settings = termios()
                if tcgetattr(STDIN_FILENO, &settings) == 0 {
                    settings.c_lflag |= tcflag_t(ECHO)
                    tcsetattr(STDIN_FILENO, TCSANOW, &settings)
                }
                _exit(130)
            }
            tcsetattr(input, TCSAFLUSH, &silent)
        }
        let line = readLine(strippingNewline: true)
        if isTerminal {
            tcsetattr(input, TCSAFLUSH, &original)
            signal(SIGINT, SIG_DFL)
            printError("")
        }
        guard let line else { throw NoInput() }
        return line
    }
}

private func printError(_ message: String, terminator: String = "\n") {
    var bytes = Array((message + terminator).utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}
