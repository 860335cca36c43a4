import Logging
import RedlineCore

/// GPIO lines of one chip through libgpiod v1. (Being built: see the GPIO rig work.)
final class GPIOBackend: BusBackend {
    init(chip: String, points: [Point], logger: Logger) throws(DeviceError) {
        throw .unsupported("GPIO backend not built yet")
    }
    func read(_ points: [Point]) -> [String: Result<Double, DeviceError>] {
        Dictionary(uniqueKeysWithValues: points.map { ($0.id, .failure(.unsupported("GPIO"))) })
    }
    func write(_ point: Point, value: Double) -> Result<Double, DeviceError> { .failure(.unsupported("GPIO")) }
    func close() {}
}
