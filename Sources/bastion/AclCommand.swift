import ArgumentParser

struct Acl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "acl", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
