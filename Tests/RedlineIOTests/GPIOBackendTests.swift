import Logging
import RedlineCore
import Testing

@testable import RedlineIO

/// Host-side checks of GPIOBackend's fail-closed paths. The lines themselves are exercised
/// against a real kernel GPIO chip in the gpio-sim virtual machine (Simulators/gpio-vm/run.sh),
/// since build machines have no GPIO chip.
@Suite("GPIOBackend without a chip")
struct GPIOBackendHostTests {
    static let lock = Point(id: "sra-door.lock", device: "sra-door", name: "lock", role: .egressLock,
                            zone: "server-room-a", bus: "gpio", unitId: nil,
                            binding: .gpio(line: .offset(0), activeLow: false))

    @Test("a chip that cannot be opened fails init with a connection error naming it",
          arguments: ["gpiochip-redline-absent", "/nonexistent/gpiochip0", "/dev/null", "/proc/version"])
    func missingChip(chip: String) {
        do {
            _ = try GPIOBackend(chip: chip, points: [Self.lock], logger: Logger(label: "test"))
            Issue.record("opening \(chip) as a GPIO chip succeeded")
        } catch {
            guard case .connection(let message) = error else {
                Issue.record("expected a connection error, got \(error)")
                return
            }
            #expect(message.contains(chip))
        }
    }
}

/// Issue 11: GPIO lines bound by name are resolved against the real chip, and a name that
/// does not resolve, or resolves onto a line already bound, is refused (at daemon start-up,
/// and by the backend itself). The chip here is a list of line names, as libgpiod reports them.
@Suite("GPIO line names resolved against the chip")
struct GPIOLineResolutionTests {
    static let chip = GPIOChipLines(chip: "gpiochip0", names: ["relay-1", "relay-2", "door-contact", nil, "pir", "dup", "dup"])

    static func point(_ id: String, _ line: GPIOLine, _ role: Role = .egressLock, bus: String = "gpio") -> Point {
        Point(id: id, device: String(id.split(separator: ".")[0]), name: String(id.split(separator: ".")[1]), role: role,
              zone: "room", bus: bus, unitId: nil, binding: .gpio(line: line, activeLow: false))
    }

    @Test func lineNamesResolveToTheirOffsets() {
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .name("relay-2")), Self.point("door.contact", .name("door-contact"), .doorContact),
                                          Self.point("occ.pir", .offset(4), .occupancy)], on: Self.chip)
        #expect(r.refusals.isEmpty)
        #expect(r.offsets == ["door.lock": 1, "door.contact": 2, "occ.pir": 4])
    }

    @Test func lineNameThatDoesNotResolveIsRefused() {
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .name("relay-9"))], on: Self.chip)
        #expect(r.offsets.isEmpty)
        #expect(r.refusals["door.lock"] == "door.lock: no line of gpiochip0 is named 'relay-9'")
    }

    @Test func lineNameOnAnOffsetAlreadyBoundIsRefused() {
        // "relay-1" is line 0, which the lights are already bound to by offset: the loader cannot
        // see it (a name and an offset), the chip can. Both bindings are refused.
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .name("relay-1")), Self.point("lights.on", .offset(0), .generalOutput)], on: Self.chip)
        #expect(r.offsets.isEmpty)
        #expect(r.refusals["door.lock"]?.contains("line 0 of gpiochip0 is bound more than once: door.lock (named 'relay-1'), lights.on (offset 0)") == true,
                "\(r.refusals)")
        #expect(r.refusals["lights.on"] != nil)
    }

    @Test func oneLineNamedByTwoPointsIsRefused() {
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .name("relay-1")), Self.point("door-b.lock", .name("relay-1"), bus: "gpio-b")], on: Self.chip)
        #expect(r.offsets.isEmpty)
        #expect(r.refusals.count == 2)
    }

    @Test func nameCarriedBySeveralLinesIsRefused() {
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .name("dup"))], on: Self.chip)
        #expect(r.refusals["door.lock"] == "door.lock: 2 lines of gpiochip0 are named 'dup' (offsets 5, 6); bind it by offset")
    }

    @Test func offsetTheChipDoesNotHaveIsRefused() {
        let r = GPIOBackend.resolveLines([Self.point("door.lock", .offset(7))], on: Self.chip)
        #expect(r.refusals["door.lock"] == "door.lock: gpiochip0 has no line 7 (it has 7 lines)")
    }

    @Test func lineNamesOnAChipThatCannotBeOpenedAreRefusedAtStartup() {
        let bus = Bus(id: "gpio", kind: .gpio(chip: "gpiochip-redline-absent"))
        let named = GPIOBackend.startupProblems(buses: [bus], points: [Self.point("door.lock", .name("relay-1"))])
        #expect(named.count == 1)
        #expect(named.first?.contains("cannot resolve the line names of door.lock against chip gpiochip-redline-absent") == true, "\(named)")
        // Offsets need no resolving: the backend keeps retrying the chip, as before.
        #expect(GPIOBackend.startupProblems(buses: [bus], points: [Self.point("door.lock", .offset(0))]).isEmpty)
    }
    @Test func aChipNamedByLabelThatNoChipCarriesRefusesStartup() {
        // Offsets only: a label is the site's claim of which chip it is, so its absence is a
        // mismatch, not a device that may come back.
        let bus = Bus(id: "gpio", kind: .gpio(chip: "redline-absent-label"))
        let problems = GPIOBackend.startupProblems(buses: [bus], points: [Self.point("door.lock", .offset(0))])
        #expect(problems.count == 1)
        #expect(problems.first?.contains("no GPIO chip is labelled 'redline-absent-label' (chips here: ") == true, "\(problems)")
    }

    @Test func aChipPinnedToALabelThatCannotBeOpenedRefusesStartup() {
        let bus = Bus(id: "gpio", kind: .gpio(chip: "gpiochip-redline-absent"), chipLabel: "pinctrl-rp1")
        let problems = GPIOBackend.startupProblems(buses: [bus], points: [Self.point("door.lock", .offset(0))])
        #expect(problems.count == 1)
        #expect(problems.first?.contains("the site requires it to be labelled 'pinctrl-rp1'") == true, "\(problems)")
    }

    @Test func aChipCarryingAnotherLabelIsNamed() {
        let lines = GPIOChipLines(chip: "gpiochip4", label: "pinctrl-bcm2711", names: [nil])
        #expect(lines.labelMismatch(spelled: "gpiochip4", expected: "pinctrl-bcm2711") == nil)
        let why = lines.labelMismatch(spelled: "gpiochip4", expected: "pinctrl-rp1")
        #expect(why?.hasPrefix("GPIO chip gpiochip4 (gpiochip4) is labelled 'pinctrl-bcm2711', but the site requires 'pinctrl-rp1'") == true, "\(why ?? "nil")")
    }

    @Test func theBackendRefusesAChipNamedByAnAbsentLabel() {
        #expect(throws: DeviceError.self) {
            _ = try GPIOBackend(chip: "redline-absent-label", points: [], logger: Logger(label: "test"))
        }
    }
}
