import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct ConnectValidatorTests {
    private func validate(_ connect: ConnectPacket, limits: BrokerLimits = BrokerLimits()) -> ConnectValidation {
        ConnectValidator.validate(connect, limits: limits) { "assigned-id" }
    }

    private func accepted(_ v: ConnectValidation) -> AcceptedConnect? {
        if case .accept(let a) = v { return a }
        return nil
    }

    @Test func mqtt311EmptyIdNeedsCleanSession() {
        #expect(validate(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: false, clientID: "")) ==
                .refuse(.clientIdentifierNotValid, reason: "empty client identifier requires clean session (MQTT-3.1.3-8)"))
        let a = accepted(validate(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: true, clientID: "")))
        #expect(a?.clientID == "assigned-id")
        #expect(a?.sessionExpiryInterval == 0)
    }

    @Test func mqtt5EmptyIdIsAssigned() {
        let a = accepted(validate(ConnectPacket(protocolVersion: .v5, cleanStart: false, clientID: "")))
        #expect(a?.clientID == "assigned-id")
        #expect(a?.assignedClientID == true)
    }

    @Test func mqtt31IdentifierLength() {
        guard case .refuse(.clientIdentifierNotValid, _) = validate(ConnectPacket(protocolVersion: .v3_1, clientID: "")) else {
            Issue.record("empty 3.1 id accepted"); return
        }
        guard case .refuse(.clientIdentifierNotValid, _) = validate(ConnectPacket(protocolVersion: .v3_1, clientID: String(repeating: "a", count: 24))) else {
            Issue.record("24-character 3.1 id accepted"); return
        }
        #expect(accepted(validate(ConnectPacket(protocolVersion: .v3_1, clientID: String(repeating: "a", count: 23)))) != nil)
    }

    @Test func sessionExpiryMapping() {
        #expect(accepted(validate(ConnectPacket(protocolVersion: .v3_1_1, cleanStart: false, clientID: "c")))?.sessionExpiryInterval == 0xFFFF_FFFF)
        var p = ConnectProperties()
        p.sessionExpiryInterval = 30
        #expect(accepted(validate(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p)))?.sessionExpiryInterval == 30)
        #expect(accepted(validate(ConnectPacket(protocolVersion: .v5, clientID: "c")))?.sessionExpiryInterval == 0)
        var limits = BrokerLimits()
        limits.maximumSessionExpiry = 10
        #expect(accepted(validate(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p), limits: limits))?.sessionExpiryInterval == 10)
    }

    @Test func serverKeepAliveOverridesLargeOrZeroKeepAlive() {
        var limits = BrokerLimits()
        limits.maximumKeepAlive = 30
        let big = accepted(validate(ConnectPacket(protocolVersion: .v5, keepAlive: 60, clientID: "c"), limits: limits))
        #expect(big?.keepAlive == 30)
        #expect(big?.serverKeepAliveOverride == true)
        let zero = accepted(validate(ConnectPacket(protocolVersion: .v5, keepAlive: 0, clientID: "c"), limits: limits))
        #expect(zero?.keepAlive == 30)
        let small = accepted(validate(ConnectPacket(protocolVersion: .v5, keepAlive: 10, clientID: "c"), limits: limits))
        #expect(small?.keepAlive == 10)
        #expect(small?.serverKeepAliveOverride == false)
    }

    @Test func authenticationMethodIsRefusedWithoutEnhancedAuth() {
        var p = ConnectProperties()
        p.authenticationMethod = "SCRAM-SHA-256"
        guard case .refuse(.badAuthenticationMethod, _) = validate(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p)) else {
            Issue.record("authentication method accepted"); return
        }
        let supported = ConnectValidator.validate(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p), limits: BrokerLimits(),
                                                  supportsAuthenticationMethod: { $0 == "SCRAM-SHA-256" }) { "id" }
        #expect(accepted(supported)?.authenticationMethod == "SCRAM-SHA-256")
    }

    @Test func clientCapabilitiesAreTaken() {
        var p = ConnectProperties()
        p.receiveMaximum = 5
        p.maximumPacketSize = 1000
        p.topicAliasMaximum = 4
        p.requestProblemInformation = false
        p.requestResponseInformation = true
        let c = accepted(validate(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p)))?.client
        #expect(c?.receiveMaximum == 5)
        #expect(c?.maximumPacketSize == 1000)
        #expect(c?.topicAliasMaximum == 4)
        #expect(c?.requestProblemInformation == false)
        #expect(c?.requestResponseInformation == true)
    }

    @Test func willTopicOverLimitsIsRefused() {
        var limits = BrokerLimits()
        limits.maximumTopicLevels = 2
        let will = ConnectPacket.Will(topic: "a/b/c", payload: ByteBuffer(string: "bye"))
        guard case .refuse(.topicNameInvalid, _) = validate(ConnectPacket(protocolVersion: .v5, clientID: "c", will: will), limits: limits) else {
            Issue.record("deep will topic accepted"); return
        }
    }
}
