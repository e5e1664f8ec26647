import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore

/// The connection's reports to abuse protection and the audit log, and publish-rate enforcement.
extension MQTTConnectionHandler {
    var auditPeer: AuditPeer {
        AuditPeer(listener: info.listener, ip: remoteAddress?.ipAddress, port: remoteAddress?.port)
    }

    func auditAuthenticationFailure(_ auditReason: AuditEvent.AuthFailure.Reason, weight: AuthFailureWeight, username: String?) {
        guard let protection = broker.protection else { return }
        protection.authenticationFailed(AuditEvent.AuthFailure(
            peer: auditPeer, clientID: clientID, username: username, reason: auditReason, protocolVersion: version.description),
            weight: weight)
    }

    func auditConnectionAccepted(cleanStart: Bool) {
        guard let protection = broker.protection else { return }
        protection.connectionAccepted(AuditEvent.ConnectionAccepted(
            peer: auditPeer, clientID: clientID, username: identity?.username,
            identity: identity?.username ?? identity?.certificateIdentity, protocolVersion: version.description,
            tlsVersion: info.tlsVersion, tlsCipher: info.cipherSuite, certificateSerial: info.certificateSerial, cleanStart: cleanStart))
        let limiter = protection.publishRateLimiter(listenerIndex: listenerIndex, now: protection.now())
        // Without a configured rate there is nothing to charge (and no clock to read per message).
        rateLimiter = limiter.policy.isUnlimited ? nil : RateLimiterBox(limiter)
    }

    func auditDenied(_ operation: AuditEvent.AuthorizationDenied.Operation, _ topic: String, rule: String? = nil) {
        guard let protection = broker.protection else { return }
        protection.authorizationDenied(AuditEvent.AuthorizationDenied(
            peer: auditPeer, clientID: clientID, username: identity?.username, operation: operation, topic: topic,
            rule: rule ?? authorizer.lastDenialRule))
    }

    func auditLimit(_ limit: AuditEvent.LimitReached.Limit, _ action: AuditEvent.LimitReached.Action, value: Int? = nil, maximum: Int? = nil) {
        broker.protection?.limitReached(AuditEvent.LimitReached(
            limit: limit, action: action, peer: auditPeer, clientID: clientID.isEmpty ? nil : clientID,
            username: identity?.username, value: value, maximum: maximum))
    }

    /// Charges an inbound PUBLISH to the client's rate. Returns false when the connection must stop
    /// processing it: over the rate with `publish_rate_action: disconnect` (5.0: DISCONNECT 0x96).
    /// With backpressure (the default) the socket is not read until the bucket refills.
    func chargePublishRate(bytes: Int) -> Bool {
        guard let rateLimiter, let protection = broker.protection else { return true }
        let decision = rateLimiter.limiter.consume(bytes: bytes, now: protection.now())
        switch decision {
        case .ok:
            return true
        case .throttle(let resumeAfter):
            if !throttleReported {
                throttleReported = true
                auditLimit(.publishRate, .throttled)
            } else {
                protection.metrics?.publishThrottled()
            }
            pauseReading(for: TimeAmount(resumeAfter))
            return true
        case .exceeded:
            auditLimit(.publishRate, .disconnected)
            closeReason = "publish rate exceeded"
            run(.disconnect(.messageRateTooHigh, reasonString: "publish rate limit exceeded"))
            return false
        }
    }

    /// Stops reading and decoding until `delay` has passed (already buffered bytes wait too).
    func pauseReading(for delay: TimeAmount) {
        guard pauseReading(), let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: delay) {
            let handler = loopBound.value
            handler.resumeReading()
        }
    }

    /// Stops reading and decoding; returns false if already paused.
    @discardableResult
    func pauseReading() -> Bool {
        guard !readPaused, let context else { return false }
        readPaused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        return true
    }

    func resumeReading() {
        guard readPaused, let context else { return }
        readPaused = false
        decodeAvailable()
        worker.flush()
        guard !readPaused, !machine.isClosed else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.read()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Out of line: most deployments set no publish rate, and an idle connection should not carry it.
final class RateLimiterBox {
    var limiter: PublishRateLimiter

    init(_ limiter: PublishRateLimiter) { self.limiter = limiter }
}
