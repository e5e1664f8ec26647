import BastionCore
import Logging
import NIOCore

/// The broker as the `BastionTesting` target drives it: one broker on a given loop, and a
/// connection handler for each channel a test opens. Nothing else of the server is exposed.
@_spi(Testing) public struct BrokerUnderTest: Sendable {
    let broker: Broker

    public init(group: any EventLoopGroup, limits: BrokerLimits, logger: Logger,
                enhancedAuthenticator: (any EnhancedAuthenticator)? = nil) {
        broker = Broker(group: group, limits: limits, logger: logger, enhancedAuthenticator: enhancedAuthenticator)
    }

    /// The handler a listener puts on an accepted channel.
    public func connectionHandler(eventLoop: any EventLoop, info: ConnectionInfo) -> any ChannelHandler {
        MQTTConnectionHandler(broker: broker, eventLoop: eventLoop, info: info)
    }
}
