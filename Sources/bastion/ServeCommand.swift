import ArgumentParser

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the broker.")

    func run() async throws {
        throw ExitCode(2)
    }
}
