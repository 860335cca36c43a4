import Foundation
import RedlineTestSupport
import Testing

/// The HIL suites that ran on the Modbus demo only, on the BACnet demo site: the fire panel, the
/// door and the CRACs answer over BACnet/IP (Firmware-Configs/demo-datacenter-bacnet.yaml).
extension BACnetScenarioTests {
    @Test("calm day on the BACnet site: the agent's legitimate work goes through (no over-blocking)")
    func calmDay() throws {
        try HILTests.calmDay(try BACnetStack.get(manualClock: true))
    }
}

@Suite("BACnet site: HIL adversarial agent and guided proof test", .serialized,
       .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct BACnetHILTests {
    /// Half the Modbus run's commands (about 11 s here): every red line is still denied dozens of
    /// times, and the BACnet devices are faulted among the others.
    @Test("a bounded seeded `redline-hil fuzz` run on the BACnet site breaks no invariant; every red line tried and denied")
    func boundedFuzzRun() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml")
        defer { s.stop() }
        try HILFuzzTests.boundedRun(s, commands: 1000, maxSeconds: 40, atLeast: 1000)
    }

    @Test("Server Room A as a guided proof test on the BACnet site produces a passing proof-test record")
    func guidedServerRoomA() throws {
        let s = try PlantAndDaemon(site: "demo-datacenter-bacnet.yaml", manualClock: true)
        defer { s.stop() }
        try HILGuidedTests.guidedServerRoomA(s)
    }
}
