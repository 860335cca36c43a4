/// The Modbus read transactions for a set of points, as the Modbus backend makes them.
///
/// Points are grouped by unit and table (groups in the order they first appear); each group
/// is read in runs of contiguous declared addresses, at most 125 registers or 2000 bits per
/// request. Only contiguous runs: an address no profile declared is never read. One run is
/// one transaction on the bus. The backend reads exactly this plan, and the scan budget of a
/// serial line (`SerialScanBudget`) is computed from it, so the two cannot disagree.
public enum ModbusReadPlan {
    /// One read request.
    public struct Read: Sendable, Hashable {
        public var unit: Int
        public var table: ModbusTable
        public var start: Int
        public var count: Int
        /// Indices, into the planned points, of the points this read returns.
        public var points: [Int]

        /// RTU request frame: unit, function, start (2), count (2), CRC (2).
        public var rtuRequestBytes: Int { 8 }
        /// RTU response frame: unit, function, byte count, data, CRC (2).
        public var rtuResponseBytes: Int { 5 + dataBytes }
        /// Data bytes of the response: one bit per coil or input, two bytes per register.
        public var dataBytes: Int { table.isBit ? (count + 7) / 8 : count * 2 }
    }

    /// Why a point cannot be read over Modbus at all.
    public enum Rejection: Sendable, Hashable {
        case notModbus
        case noValidUnit
        case invalidAddress
    }

    public static let maxRegistersPerRead = 125
    public static let maxBitsPerRead = 2000

    /// The reads for `points`, and the points (by index) that cannot be read.
    public static func plan(_ points: [Point]) -> (reads: [Read], rejected: [(index: Int, why: Rejection)]) {
        struct Key: Hashable { var unit: Int; var table: ModbusTable }
        var groups: [Key: [(index: Int, address: Int)]] = [:]
        var order: [Key] = []
        var rejected: [(index: Int, why: Rejection)] = []
        for (i, p) in points.enumerated() {
            guard case .modbus(let table, let address, _, _) = p.binding else {
                rejected.append((i, .notModbus))
                continue
            }
            guard let unit = p.unitId, (1...247).contains(unit) else {
                rejected.append((i, .noValidUnit))
                continue
            }
            guard (0...65535).contains(address) else {
                rejected.append((i, .invalidAddress))
                continue
            }
            let k = Key(unit: unit, table: table)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append((i, address))
        }
        var reads: [Read] = []
        for k in order {
            let members = groups[k]!.sorted { ($0.address, $0.index) < ($1.address, $1.index) }
            let limit = k.table.isBit ? maxBitsPerRead : maxRegistersPerRead
            var run: [(index: Int, address: Int)] = []
            func flush() {
                guard let first = run.first, let last = run.last else { return }
                reads.append(Read(unit: k.unit, table: k.table, start: first.address,
                                  count: last.address - first.address + 1, points: run.map(\.index)))
                run = []
            }
            for m in members {
                if let first = run.first, let end = run.last?.address, m.address <= end + 1, m.address - first.address < limit {
                    run.append(m)
                } else {
                    flush()
                    run = [m]
                }
            }
            flush()
        }
        return (reads, rejected)
    }
}
