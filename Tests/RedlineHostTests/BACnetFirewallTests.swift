import Foundation
import RedlineCore
import Testing
@testable import RedlineHost

/// Issue 17: a BACnet/IP bus is a UDP endpoint the ruleset keeps every uid but the service's from.
@Suite("firewall ruleset: BACnet/IP endpoints")
struct BACnetFirewallTests {
    static let site = Site(
        name: "t-bacnet", zones: [],
        buses: [
            Bus(id: "bms", kind: .bacnetIP(address: "10.20.0.30", port: 47808)),
            Bus(id: "sim", kind: .bacnetIP(address: "127.0.0.1", port: 47809)),
            Bus(id: "gone", kind: .bacnetIP(address: "nowhere.invalid", port: 47808)),
        ],
        points: [], agents: [])
    static let resolver = AddressResolver.fixed(["10.20.0.30": ["10.20.0.30"], "127.0.0.1": ["127.0.0.1"]], local: [])

    @Test func bacnetBusesAreUDPEndpointsInTheRuleset() {
        let inv = DeviceInventory(site: Self.site, resolver: Self.resolver)
        #expect(inv.endpoints.map(\.transport) == [.udp, .udp])
        #expect(inv.unresolved.map(\.bus) == ["gone"])
        let s = FirewallRuleset.sets(inv)
        #expect(s.endpoints4 == ["10.20.0.30 . 47808"])
        #expect(s.hosts4 == ["10.20.0.30"])
        #expect(s.localPorts == [47809])
        let r = FirewallRuleset(serviceUID: 998, serviceName: "_redline", interface: nil, siteName: "t-bacnet",
                                siteFile: "site.yaml", command: "redlinectl firewall site.yaml").render(inv)
        #expect(r.contains("#   bus bms: udp 10.20.0.30:47808"), "\(r)")
        #expect(r.contains("udp dport @device_endpoints4"), "\(r)")
    }

    /// host-check never judges a UDP endpoint by a TCP connect (refused would pass as blocked).
    @Test func hostCheckDoesNotProbeUDPEndpointsWithATCPConnect() {
        var site = Self.site
        site.buses.append(Bus(id: "mb", kind: .modbusTCP(host: "10.20.0.30", port: 502)))
        let inv = DeviceInventory(site: site, resolver: Self.resolver)
        let targets = HostCheck(siteFile: "site.yaml").endpointTargets(inv)
        #expect(targets.map(\.label) == ["10.20.0.30:502 (bus mb)"])
    }
}
