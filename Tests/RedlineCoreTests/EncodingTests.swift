import PropertyBased
import Testing
@testable import RedlineCore

/// Decide on what will be written: `Point.quantized` is the value that lands on the device.
@Suite("Encoding: quantize through the point's encoding")
struct EncodingTests {
    static func register(_ role: Role = .temperatureSetpoint, table: ModbusTable = .holdingRegister,
                         scale: Double = 0.1, signed: Bool = false) -> Point {
        Point(id: "d.p", device: "d", name: "p", role: role, zone: "z", bus: "b", unitId: 1,
              binding: .modbus(table: table, address: 0, scale: scale, signed: signed))
    }

    static func line(_ role: Role) -> Point {
        Point(id: "d.l", device: "d", name: "l", role: role, zone: "z", bus: "g", unitId: nil,
              binding: .gpio(line: .offset(0), activeLow: true))
    }

    @Test func setpointQuantizesToTheRegisterGrid() {
        let p = Self.register(scale: 0.1)
        #expect(p.quantized(27.04) == 27)
        #expect(p.quantized(27.06) == 27.1)
        #expect(p.quantized(27.05) == 27.1)  // halves away from zero
        #expect(p.quantized(22.35) == 22.4)
        for v in [15.0, 27, 32, 22.5, 19.5] { #expect(p.quantized(v) == v, "\(v)") }
        // Scale 2 turns 27 into 28, 15 into 16: the validator refuses such a setpoint, and the
        // policy sees 28 if one ever gets this far.
        #expect(Self.register(scale: 2).quantized(27) == 28)
        #expect(Self.register(scale: 0.7).quantized(32).map { abs($0 - 32.2) < 1e-9 } == true)
    }

    @Test func valueOutsideTheRegisterRangeIsNotRepresentable() {
        #expect(Self.register(scale: 0.1).quantized(-0.1) == nil)
        #expect(Self.register(scale: 0.1).quantized(6553.5) == 6553.5)
        #expect(Self.register(scale: 0.1).quantized(6553.6) == nil)
        #expect(Self.register(scale: 0.1, signed: true).quantized(-3276.8) == -3276.8)
        #expect(Self.register(scale: 0.1, signed: true).quantized(3276.8) == nil)
        #expect(Self.register(.dispatchDelay, scale: 1).quantized(65535.4) == 65535)
        #expect(Self.register(.dispatchDelay, scale: 1).quantized(65535.5) == nil)
    }

    @Test func nonFiniteValuesAndUnusableScalesAreNotRepresentable() {
        for v in [Double.nan, .infinity, -.infinity, .signalingNaN] {
            #expect(Self.register().quantized(v) == nil)
            #expect(Self.register(.egressLock, table: .coil).quantized(v) == nil)
            #expect(Self.line(.egressLock).quantized(v) == nil)
        }
        for s in [0.0, -1, -0.1, .nan, .infinity, -.infinity] {
            #expect(Self.register(scale: s).quantized(20) == nil, "scale \(s)")
        }
        #expect(Self.register(.dispatchDelay, scale: 1e-300).quantized(1) == nil)
    }

    @Test func booleansCarryExactlyZeroOrOne() {
        for p in [Self.register(.egressLock, table: .coil), Self.line(.egressLock), Self.register(.coolingRun, scale: 1)] {
            #expect(p.quantized(0) == 0)
            #expect(p.quantized(-0.0) == 0)
            #expect(p.quantized(1) == 1)
            for v in [0.4, 0.5, 0.6, 2, -1] { #expect(p.quantized(v) == nil, "\(p.binding) \(v)") }
        }
        // A boolean on a register whose scale would turn 1 into 2 cannot be written at all.
        #expect(Self.register(.coolingRun, scale: 2).quantized(1) == nil)
        #expect(Self.register(.coolingRun, scale: 2).quantized(0) == 0)
    }

    @Test func wireValueIsWhatTheBackendSends() {
        let p = Self.register(scale: 0.1, signed: true)
        #expect(p.wireValue(for: -5.2) == WireValue(raw: 0xFFCC, value: -5.2))
        #expect(p.wireValue(for: 23.44) == WireValue(raw: 234, value: 23.4))
        #expect(Self.register(.egressLock, table: .coil).wireValue(for: 1) == WireValue(raw: 1, value: 1))
        #expect(Self.line(.egressLock).wireValue(for: 1) == WireValue(raw: 1, value: 1))
    }

    // MARK: property: idempotent, and round-trips through the Modbus register encoding

    struct Case: Sendable, CustomStringConvertible {
        var point: Point
        var value: Double
        var description: String { "\(point.role.rawValue) \(point.binding) <- \(value)" }
    }

    static let scales: [Double] = [1, 0.1, 0.01, 0.001, 0.5, 0.25, 2, 10, 0.7, 0.3, 1.5, 3, 1e-4, 1e4, 0.123, 7]
    static let specials: [Double] = [.nan, .infinity, -.infinity, -0.0, 0, 1, 0.5, -0.5, 15, 27, 32, 27.05, 22.35,
                                     65535, 65535.5, 65536, -32768, -32768.5, 32767, 32767.5, 1e300, -1e300,
                                     .leastNonzeroMagnitude, .greatestFiniteMagnitude]
    static let roles: [Role] = [.temperatureSetpoint, .dispatchDelay, .status, .generalOutput, .egressLock, .coolingRun, .temperature]

    static let gen = Generator<Case, Shrink.None<Case>>(run: { rng in
        let role = roles[Int.random(in: 0..<roles.count, using: &rng)]
        let tables = ModbusTable.allCases
        let point: Point
        if Int.random(in: 0..<8, using: &rng) == 0 {
            point = line(role)
        } else {
            let scale = Bool.random(using: &rng) ? scales[Int.random(in: 0..<scales.count, using: &rng)]
                                                 : Double.random(in: 1e-3...100, using: &rng)
            point = register(role, table: tables[Int.random(in: 0..<tables.count, using: &rng)], scale: scale,
                             signed: Bool.random(using: &rng))
        }
        let value: Double
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: value = specials[Int.random(in: 0..<specials.count, using: &rng)]
        case 1: value = Double.random(in: -100...100, using: &rng)
        case 2: value = Double(Int.random(in: -40000...70000, using: &rng)) / 10
        default: value = Double.random(in: -1e6...1e6, using: &rng)
        }
        return Case(point: point, value: value)
    })

    @Test func quantizeIsIdempotentAndRoundTripsThroughTheModbusEncoding() async {
        await propertyCheck(count: 5000, input: Self.gen) { c in
            guard let q = c.point.quantized(c.value) else {
                #expect(c.point.wireValue(for: c.value) == nil)
                return
            }
            // Idempotent: what lands is exactly representable, so writing it lands it unchanged.
            #expect(q.isFinite)
            #expect(c.point.quantized(q) == q, "\(c): \(q) -> \(String(describing: c.point.quantized(q)))")
            let wire = c.point.wireValue(for: c.value)
            #expect(wire?.value == q)
            #expect(c.point.wireValue(for: q) == wire, "\(c)")
            // The raw word the backend sends decodes to exactly the quantized value.
            if case .modbus(let table, _, let scale, let signed) = c.point.binding, let wire {
                #expect(ModbusRegisterCodec.encode(c.value, table: table, scale: scale, signed: signed) == wire.raw)
                #expect(ModbusRegisterCodec.decode(raw: wire.raw, table: table, scale: scale, signed: signed) == q)
                #expect(ModbusRegisterCodec.encode(q, table: table, scale: scale, signed: signed) == wire.raw)
            }
            // The nearest grid value: never more than half a step away.
            if case .modbus(let table, _, let scale, _) = c.point.binding, !table.isBit, !c.point.role.isBoolean {
                #expect(abs(q - c.value) <= scale / 2 * (1 + 1e-9) + abs(c.value) * 1e-12, "\(c): \(q)")
            }
            if c.point.role.isBoolean { #expect(q == c.value) }
        }
    }
}

@Suite("Encoding: the Modbus read plan and a serial line's scan budget")
struct ReadPlanTests {
    static func p(_ id: String, unit: Int, _ table: ModbusTable, _ address: Int) -> Point {
        Point(id: id, device: "d\(unit)", name: id, role: table.isBit ? .status : .temperature, zone: "z", bus: "b", unitId: unit,
              binding: .modbus(table: table, address: address, scale: 1, signed: false))
    }

    @Test func readPlanIsOneTransactionPerContiguousRunOfAUnitAndTable() {
        let points = [
            Self.p("a", unit: 1, .inputRegister, 0), Self.p("b", unit: 1, .inputRegister, 1), Self.p("c", unit: 1, .inputRegister, 3),
            Self.p("d", unit: 1, .coil, 0), Self.p("e", unit: 2, .inputRegister, 0), Self.p("f", unit: 1, .inputRegister, 2),
        ]
        let (reads, rejected) = ModbusReadPlan.plan(points)
        #expect(rejected.isEmpty)
        #expect(reads.map { "\($0.unit) \($0.table.rawValue) \($0.start)+\($0.count)" }
                == ["1 input-register 0+4", "1 coil 0+1", "2 input-register 0+1"])
        #expect(reads[0].rtuResponseBytes == 5 + 8)
        #expect(reads[1].rtuResponseBytes == 5 + 1)
        // Gaps are never read across.
        let gap = ModbusReadPlan.plan([Self.p("a", unit: 1, .holdingRegister, 0), Self.p("b", unit: 1, .holdingRegister, 5)]).reads
        #expect(gap.count == 2)
        // At most 125 registers per read.
        let long = (0..<130).map { Self.p("r\($0)", unit: 1, .holdingRegister, $0) }
        #expect(ModbusReadPlan.plan(long).reads.map(\.count) == [125, 5])
    }

    @Test func serialScanBudgetFollowsTheREADMEFormula() {
        // One crac-unit: coil 0, holding register 0, discrete input 0: three transactions.
        let crac = [Self.p("run", unit: 3, .coil, 0), Self.p("sp", unit: 3, .holdingRegister, 0), Self.p("f", unit: 3, .discreteInput, 0)]
        let b = SerialScanBudget(baud: 9600, points: crac)
        #expect(b.transactions == 3)
        #expect(b.requestBytes == 24)
        #expect(b.responseBytes == 6 + 7 + 6)
        let char = 11.0 / 9600 * 1000
        #expect(abs(b.totalMs - ((24 + 19) * char + 3 * (2 * 3.5 * char + Limits.serialTurnaroundMs))) < 1e-9)
        #expect(b.fits(scanIntervalMs: 200))
        #expect(!b.fits(scanIntervalMs: 100))
        // Above 19200 baud the inter-frame gap is fixed at 1.75 ms.
        #expect(SerialScanBudget(baud: 115200, points: crac).gapMs == 1.75)
        #expect(b.explanation.contains("3 read transactions per scan"))
    }
}
