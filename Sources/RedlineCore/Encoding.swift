/// What a write actually puts on a device.
///
/// Points carry engineering values; devices carry 16-bit registers, single bits or GPIO
/// levels. A write of `v` lands on the device as the raw value nearest `v` in the point's
/// encoding, and that is in general not `v`: a register with scale 0.1 cannot hold 22.35,
/// one with scale 2 turns 27 °C into 28 °C. The policy must therefore decide on the value
/// that will land, not on the value that was asked for; `Point.quantized(_:)` computes it,
/// and the I/O layer encodes every write through `Point.wireValue(for:)`, the same function,
/// so the value on the wire is exactly the value that was decided on.
///
/// Everything here is pure and total: any `Double` (NaN, infinities, huge values, -0)
/// gives an answer or `nil`, never a trap.

/// The raw value a write puts on the device, and the engineering value it reads back as.
public struct WireValue: Sendable, Hashable {
    /// The register word, or 0/1 for a coil or GPIO line (logical level; active-low is the kernel's job).
    public var raw: UInt16
    /// The engineering value `raw` decodes to: what lands on the device and what a read-back returns.
    public var value: Double

    public init(raw: UInt16, value: Double) {
        self.raw = raw
        self.value = value
    }
}

/// Engineering value <-> raw Modbus encoding (engineering value = raw x scale).
public enum ModbusRegisterCodec {
    /// A usable scale: finite and strictly positive.
    public static func isValidScale(_ scale: Double) -> Bool { scale.isFinite && scale > 0 }

    /// The integer k when `scale` is 1/k for an integer k > 1 (0.1, 0.01, 0.001...), else nil.
    /// Decimal scales are applied by dividing by k, so that 2090 x 0.01 is exactly 20.9.
    static func decimalDivisor(_ scale: Double) -> Double? {
        guard isValidScale(scale), scale < 1 else { return nil }
        let inverse = 1 / scale
        let rounded = inverse.rounded()
        guard rounded > 1, rounded.isFinite, abs(inverse - rounded) < 1e-9 * rounded else { return nil }
        return rounded
    }

    /// raw x scale, computed as raw / k for decimal scales.
    public static func applyScale(_ n: Double, _ scale: Double) -> Double {
        if let k = decimalDivisor(scale) { return n / k }
        return n * scale
    }

    /// Decodes a raw register or bit into engineering units.
    public static func decode(raw: UInt16, table: ModbusTable, scale: Double, signed: Bool) -> Double {
        if table.isBit { return raw == 0 ? 0 : 1 }
        let n = signed ? Double(Int16(bitPattern: raw)) : Double(raw)
        return applyScale(n, scale)
    }

    /// The raw word nearest `value` (halves away from zero); `nil` if the value is not finite,
    /// the scale is not usable, the nearest raw value is outside the register's range
    /// (0...65535, or -32768...32767 when signed), or a bit is asked for anything but 0 or 1.
    public static func encode(_ value: Double, table: ModbusTable, scale: Double, signed: Bool) -> UInt16? {
        guard value.isFinite else { return nil }
        if table.isBit {
            if value == 0 { return 0 }
            if value == 1 { return 1 }
            return nil
        }
        guard isValidScale(scale) else { return nil }
        let exact = decimalDivisor(scale).map { value * $0 } ?? value / scale
        guard exact.isFinite else { return nil }
        let n = exact.rounded(.toNearestOrAwayFromZero)
        if signed {
            guard n >= -32768, n <= 32767 else { return nil }
            return UInt16(bitPattern: Int16(n))
        }
        guard n >= 0, n <= 65535 else { return nil }
        return UInt16(n)
    }
}

extension Point {
    /// How a write of `value` is encoded for this point's binding, and what it decodes back to.
    ///
    /// `nil` when the value cannot be put on the device at all: not finite, outside the
    /// register range, not 0 or 1 on a coil or GPIO line, or (for a boolean role) not 0 or 1
    /// or not carried exactly by the encoding. The I/O layer writes `raw`; the policy decides
    /// on `value` (see `quantized(_:)`).
    public func wireValue(for value: Double) -> WireValue? {
        guard value.isFinite else { return nil }
        if role.isBoolean, value != 0, value != 1 { return nil }
        let out: WireValue
        switch binding {
        case .modbus(let table, _, let scale, let signed):
            guard let raw = ModbusRegisterCodec.encode(value, table: table, scale: scale, signed: signed) else { return nil }
            out = WireValue(raw: raw, value: ModbusRegisterCodec.decode(raw: raw, table: table, scale: scale, signed: signed))
        case .gpio:
            guard value == 0 || value == 1 else { return nil }
            out = WireValue(raw: value == 1 ? 1 : 0, value: value == 1 ? 1 : 0)
        case .bacnet(let address):
            // BACnet carries the value itself (REAL, BACnetBinaryPV or Unsigned), not a 16-bit
            // word: `raw` is the bit of a binary object and 0 otherwise; `value` is what the object holds.
            guard let q = BACnetValueCodec.quantized(value, object: address.object.type) else { return nil }
            out = WireValue(raw: address.object.type.carriesBinary && q == 1 ? 1 : 0, value: q)
        }
        // A boolean that the encoding would turn into something else (scale 2: 1 -> 2) is not representable.
        if role.isBoolean, out.value != value { return nil }
        return out
    }

    /// The engineering value that will actually land on the device when `value` is written,
    /// or `nil` if `value` cannot be written to this point at all.
    ///
    /// Quantizes through the point's encoding: booleans, coils and GPIO lines carry exactly
    /// 0 or 1; registers carry raw x scale for a raw value in 0...65535 (-32768...32767 when
    /// signed), the nearest one being written (halves away from zero). Pure and total; it is
    /// idempotent (`quantized(quantized(v)!) == quantized(v)`) and the result decodes from the
    /// very raw value the Modbus backend sends (`wireValue(for:)`). Decide a write on this
    /// value, not on the value asked for: with scale 0.1, 27.04 lands as 27 and 27.06 as 27.1.
    public func quantized(_ value: Double) -> Double? { wireValue(for: value)?.value }
}
