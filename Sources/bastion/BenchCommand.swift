import ArgumentParser

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
