import ArgumentParser

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
