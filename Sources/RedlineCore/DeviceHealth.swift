/// Which devices are faulted, scan by scan (RL-0's view per device), and the transitions
/// operators are told of. A device is faulted while any of its points reads anything but
/// `good` (a fault, a stale or never-read value, a value outside its role's envelope).
/// A fault is told at once; a recovery only after `recoveryScans` good full scans in a row,
/// so a flapping device costs one record per episode, not two per scan (each transition is
/// an audit record, and audit retention must not depend on how a device behaves).
/// Pure: the caller keeps the state and audits the transitions.
public struct DeviceHealth: Sendable, Hashable {
    /// Faulted devices and why (their points that are not good, with their quality).
    public private(set) var faulted: [String: String] = [:]
    /// Good full scans in a row of each faulted device.
    private var goodScans: [String: Int] = [:]
    public let recoveryScans: Int

    public init(recoveryScans: Int = 3) {
        self.recoveryScans = max(1, recoveryScans)
    }

    public struct Transition: Sendable, Hashable {
        public var device: String
        public var zone: String
        public var faulted: Bool
        /// For a fault: its points that are not good (`crac.supply-temp: stale`).
        public var why: String
    }

    /// Takes a full scan; returns the devices that faulted or recovered since the last one,
    /// in the site's device order. Before the first call every device counts as healthy, so a
    /// device that is down at start-up is reported as faulted by the first scan.
    public mutating func step(site: Site, snapshot: PlantSnapshot, now: Int64) -> [Transition] {
        var bad: [String: [String]] = [:]
        for p in site.points {
            let q = snapshot.quality(of: p, now: now, staleAfterMs: site.timing.staleAfterMs)
            if q != .good { bad[p.device, default: []].append("\(p.id): \(q.rawValue)") }
        }
        var out: [Transition] = []
        for d in site.devices {
            if let points = bad[d.id] {
                let why = points.joined(separator: ", ")
                if faulted[d.id] == nil { out.append(Transition(device: d.id, zone: d.zone, faulted: true, why: why)) }
                faulted[d.id] = why
                goodScans[d.id] = 0
            } else if faulted[d.id] != nil {
                let n = goodScans[d.id, default: 0] + 1
                if n >= recoveryScans {
                    faulted[d.id] = nil
                    goodScans[d.id] = nil
                    out.append(Transition(device: d.id, zone: d.zone, faulted: false, why: ""))
                } else {
                    goodScans[d.id] = n
                }
            }
        }
        return out
    }
}
