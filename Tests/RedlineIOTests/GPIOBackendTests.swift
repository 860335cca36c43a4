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
