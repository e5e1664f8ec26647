import BastionSecurity
import Testing

@Suite struct LimitsIPAddressTests {
    @Test func parsesIPv4AndPrintsItBack() throws {
        let a = try #require(IPAddress("192.0.2.7"))
        #expect(a.isIPv4)
        #expect(a.ipv4 == 0xC000_0207)
        #expect(a.description == "192.0.2.7")
    }

    @Test func ipv4MappedIPv6IsTheSameKeyAsIPv4() {
        #expect(IPAddress("::ffff:192.0.2.7") == IPAddress("192.0.2.7"))
        #expect(IPAddress("::ffff:192.0.2.7")?.description == "192.0.2.7")
    }

    @Test func parsesIPv6InAnyAcceptedSpelling() throws {
        let a = try #require(IPAddress("2001:db8::1"))
        #expect(!a.isIPv4)
        #expect(a.description == "2001:db8::1")
        #expect(IPAddress("[2001:db8::1]") == a)
        #expect(IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001") == a)
        #expect(IPAddress("fe80::1%eth0") == IPAddress("fe80::1"))
    }

    @Test(arguments: ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "example.com", "::g", "1.2.3.4/8", " 1.2.3.4", "01.2.3.4x"])
    func rejectsNonAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func loopback() {
        #expect(IPAddress("127.0.0.1")?.isLoopback == true)
        #expect(IPAddress("127.200.0.2")?.isLoopback == true)
        #expect(IPAddress("::1")?.isLoopback == true)
        #expect(IPAddress("10.0.0.1")?.isLoopback == false)
        #expect(IPAddress("::2")?.isLoopback == false)
    }

    @Test func fromIPv6Bytes() {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[15] = 1
        #expect(IPAddress(ipv6Bytes: bytes) == IPAddress("::1"))
        #expect(IPAddress(ipv6Bytes: [1, 2, 3]) == nil)
    }

    @Test func cidrContainment() throws {
        let block = try #require(IPRange("10.0.0.0/8"))
        #expect(block.contains(try #require(IPAddress("10.255.1.2"))))
        #expect(!block.contains(try #require(IPAddress("11.0.0.1"))))
        #expect(block.description == "10.0.0.0/8")
        let v6 = try #require(IPRange("2001:db8::/32"))
        #expect(v6.contains(try #require(IPAddress("2001:db8:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db9::1"))))
        // An IPv4 block never matches an IPv6 address that merely shares low bits.
        #expect(!block.contains(try #require(IPAddress("::a00:1"))))
    }

    @Test func cidrClearsHostBitsAndTreatsSingleAddressesAsFullPrefix() throws {
        #expect(IPRange("192.168.1.77/24")?.description == "192.168.1.0/24")
        let single = try #require(IPRange("192.0.2.1"))
        #expect(single.isSingleAddress)
        #expect(single.description == "192.0.2.1")
        #expect(IPRange("0.0.0.0/0")?.contains(try #require(IPAddress("8.8.8.8"))) == true)
        #expect(IPRange("0.0.0.0/0")?.contains(try #require(IPAddress("2001:db8::1"))) == false)
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "::/129", "x/8", "10.0.0.0/8/8"])
    func rejectsBadBlocks(_ text: String) {
        #expect(IPRange(text) == nil)
    }
}
