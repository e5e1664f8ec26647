import ArgumentParser

@main
struct Bastion: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bastion",
        abstract: "A secure-by-default MQTT broker for industrial IoT.",
        subcommands: [Serve.self, Passwd.self, Acl.self, Certs.self, Bench.self, Ban.self, Audit.self],
        defaultSubcommand: Serve.self
    )
}
