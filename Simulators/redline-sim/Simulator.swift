import Dispatch
import Foundation
import PlantModel
import RedlineClient
import RedlineCore
import RedlineSync

/// The shared state of one simulator run: the plant, the device faults, the clock.
final class Simulator: Sendable {
    let site: Site
    let manualClock: Bool
    private let plant: Lock<PlantModel>
    private let faults = Lock<[String: FaultMode]>([:])
    private let delays = Lock<[String: Int]>([:])
    private let running = Lock(true)
    /// Priority arrays, Relinquish_Default, Status_Flags and Reliability of the BACnet points.
    let bacnet: BACnetState

    init(site: Site, manualClock: Bool) {
        self.site = site
        self.manualClock = manualClock
        let plant = PlantModel(site: site)
        self.bacnet = BACnetState(site: site, plant: plant)
        self.plant = Lock(plant)
    }

    var isRunning: Bool { running.withLock { $0 } }
    func stop() { running.withLock { $0 = false } }

    func withPlant<T>(_ body: (inout PlantModel) throws -> T) rethrows -> T {
        try plant.withLock { try body(&$0) }
    }

    func fault(of device: String) -> FaultMode { faults.withLock { $0[device] ?? .none } }

    /// The configured delay of a slow device, in ms (nil: the default).
    func slowDelayMs(of device: String) -> Int? { delays.withLock { $0[device] } }

    func setFault(_ mode: FaultMode, device: String, delayMs: Int? = nil) {
        delays.withLock { $0[device] = mode == .slow ? delayMs : nil }
        faults.withLock { $0[device] = mode == .none ? nil : mode }
    }

    func clearFaults() {
        faults.withLock { $0.removeAll() }
        delays.withLock { $0.removeAll() }
    }

    /// Modbus devices served, in site order.
    var modbusDevices: [Device] {
        site.devices.filter { d in
            guard let bus = site.buses.first(where: { $0.id == d.bus }) else { return false }
            switch bus.kind {
            case .modbusTCP, .modbusRTU: return d.unit != nil
            case .gpio, .bacnetIP: return false
            }
        }
    }

    /// BACnet/IP devices served, in site order.
    var bacnetDevices: [Device] {
        site.devices.filter { d in
            guard let bus = site.buses.first(where: { $0.id == d.bus }), bus.isBACnet else { return false }
            return d.deviceInstance != nil
        }
    }

    /// With the real clock, advances the plant with wall time every 100 ms.
    func startClock() {
        guard !manualClock else { return }
        let t = Thread { [self] in
            var last = Monotonic.nanoseconds()
            while self.isRunning {
                usleep(100_000)
                let now = Monotonic.nanoseconds()
                let dt = Double(now - last) / 1e9
                last = now
                self.withPlant { $0.advance(seconds: dt) }
            }
        }
        t.name = "redline-sim-clock"
        t.start()
    }
}
