import NIOCore
import NIOSSL

enum BenchTLS {
    /// One context for every connection of the run: building it (and loading the CA file) once
    /// keeps handshake cost the only TLS cost measured.
    static func makeContext(_ options: BenchConfiguration.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile {
            configuration.trustRoots = .file(caFile)
        }
        if options.insecure {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// SNI and the name checked against the certificate: the explicit one, else the host unless it
    /// is an IP address (then NIOSSL checks the certificate against the address itself).
    static func serverName(_ options: BenchConfiguration.TLS, host: String) -> String? {
        if let name = options.serverName { return name }
        return (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }
}
