import ArgumentParser

struct Ban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ban", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
