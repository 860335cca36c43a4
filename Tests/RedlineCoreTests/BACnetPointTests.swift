import Testing
@testable import RedlineCore

@Suite("BACnet point semantics: value in effect, RL-0 inputs, write outcomes")
struct BACnetPointTests {
    static let av = BACnetPointAddress(object: BACnetObjectId(type: .analogValue, instance: 1))
    static func slots(_ held: [Int: BACnetValue]) -> [BACnetValue] {
        (1...16).map { held[$0] ?? .null }
    }
    static let normal = BACnetValue.bitString([false, false, false, false])

    @Test func anInputIsUnknownOnFaultOverriddenOutOfServiceOrReliability() {
        func input(_ sf: BACnetValue?, _ rel: BACnetValue?, _ v: BACnetValue = .real(22)) -> String? {
            BACnetPointReading(address: Self.av, value: v, statusFlags: sf, reliability: rel).unknownAsInput()
        }
        #expect(input(Self.normal, .enumerated(0)) == nil)
        // in-alarm alone does not make a reading unknown: the alarm is the reading.
        #expect(input(.bitString([true, false, false, false]), .enumerated(0)) == nil)
        #expect(input(.bitString([false, true, false, false]), .enumerated(0)) == "Status_Flags/Reliability show fault")
        #expect(input(.bitString([false, false, true, false]), .enumerated(0)) == "Status_Flags/Reliability show overridden")
        #expect(input(.bitString([false, false, false, true]), .enumerated(0)) == "Status_Flags/Reliability show out-of-service")
        #expect(input(Self.normal, .enumerated(7)) == "Status_Flags/Reliability show Reliability 7 (not no-fault-detected)")
        #expect(input(nil, .enumerated(0)) == "Status_Flags could not be read")
        #expect(input(.bitString([false, false]), .enumerated(0))?.hasPrefix("Status_Flags malformed") == true)
        // Reliability is optional in the standard: an object without one is judged on its Status_Flags.
        #expect(input(Self.normal, nil) == nil)
        #expect(input(.bitString([false, true, false, false]), nil) == "Status_Flags/Reliability show fault")
        #expect(input(Self.normal, .unsigned(0))?.hasPrefix("Reliability malformed") == true)
        #expect(input(Self.normal, .enumerated(0), .characterString("22")) != nil)
        #expect(input(Self.normal, .enumerated(0), .real(.nan)) != nil)
    }

    @Test func theValueInEffectIsTheHighestSlotElseRelinquishDefault() {
        var r = BACnetPointReading(address: Self.av, value: .real(21), priorityArray: Self.slots([:]), relinquishDefault: .real(21))
        #expect(r.effective == 21 && r.activePriority == nil)
        r.priorityArray = Self.slots([9: .real(24), 12: .real(18)])
        #expect(r.effective == 24 && r.activePriority == BACnetPriority(9))
        r.priorityArray = Self.slots([8: .real(25), 9: .real(24)])
        #expect(r.effective == 25 && r.activePriority == BACnetPriority(8))
        r.priorityArray = Array(Self.slots([:]).prefix(15))
        #expect(r.effective == nil, "a priority array of 15 slots says nothing")
    }

    @Test func writeOutcomes() {
        let p9 = BACnetPriority(9)!
        func reading(_ pv: BACnetValue, _ held: [Int: BACnetValue]) -> BACnetPointReading {
            BACnetPointReading(address: Self.av, value: pv, priorityArray: Self.slots(held), relinquishDefault: .real(21))
        }
        #expect(reading(.real(24), [9: .real(24)]).outcome(of: .real(24), at: p9) == .executed(value: 24))
        #expect(reading(.real(25), [8: .real(25), 9: .real(24)]).outcome(of: .real(24), at: p9) == .overridden(priority: BACnetPriority(8)!, presentValue: 25))
        // A lower priority (12) holding another value does not override the agent's 9.
        #expect(reading(.real(24), [9: .real(24), 12: .real(18)]).outcome(of: .real(24), at: p9) == .executed(value: 24))
        #expect(reading(.real(21), [:]).outcome(of: nil, at: p9) == .relinquished(presentValue: 21, source: .relinquishDefault))
        #expect(reading(.real(18), [12: .real(18)]).outcome(of: nil, at: p9) == .relinquished(presentValue: 18, source: .priority(BACnetPriority(12)!)))
        guard case .mismatch = reading(.real(21), [:]).outcome(of: .real(24), at: p9) else { Issue.record("an empty slot is not held"); return }
        guard case .mismatch = reading(.real(24), [9: .real(24)]).outcome(of: nil, at: p9) else { Issue.record("a release that left the slot"); return }
        guard case .mismatch = reading(.real(20), [9: .real(24)]).outcome(of: .real(24), at: p9) else { Issue.record("present-value disagrees"); return }
        guard case .mismatch = BACnetPointReading(address: Self.av, value: .real(24)).outcome(of: .real(24), at: p9) else {
            Issue.record("no priority array: not executed"); return
        }
    }

    @Test func encodingIsTheValueThatTakesEffect() {
        #expect(BACnetEncoding.encode(21.5, for: .analogValue) == .real(21.5))
        #expect(BACnetEncoding.quantize(22.1, for: .analogOutput) == Double(Float(22.1)))
        #expect(BACnetEncoding.encode(1, for: .binaryOutput) == .enumerated(1))
        #expect(BACnetEncoding.encode(0.5, for: .binaryValue) == nil)
        #expect(BACnetEncoding.encode(0, for: .multiStateValue) == nil)
        #expect(BACnetEncoding.encode(3, for: .multiStateOutput) == .unsigned(3))
        #expect(BACnetEncoding.encode(1e39, for: .analogValue) == nil)
        #expect(BACnetEncoding.encode(.infinity, for: .analogValue) == nil)
        #expect(BACnetEncoding.encode(1, for: .device) == nil)
    }
}
