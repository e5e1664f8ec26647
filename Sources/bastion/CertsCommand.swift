import ArgumentParser

struct Certs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "certs", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
