import ArgumentParser

struct Passwd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Not yet available.")

    func run() async throws {
        throw ExitCode(2)
    }
}
