import ArgumentParser
import Foundation

@main
struct Bastion: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bastion",
        abstract: "A secure-by-default MQTT broker for industrial IoT.",
        subcommands: [Serve.self, Passwd.self, Acl.self, Certs.self, Bench.self, Ban.self, Audit.self],
        defaultSubcommand: Serve.self
    )

    /// Runs the command; bad usage exits 2 (not ArgumentParser's 64), as operators' scripts expect.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
