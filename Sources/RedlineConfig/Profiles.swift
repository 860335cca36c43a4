import Foundation
import RedlineCore
import Yams

/// Where a profile point lives on its device.
public enum ProfileLocation: Sendable, Hashable {
    /// A Modbus table and 0-based address.
    case register(table: ModbusTable, address: Int)
    /// A GPIO line; bound per device in the site (`lines:`), this is the default.
    case line(GPIOLine)

    public var isGPIO: Bool { if case .line = self { return true } else { return false } }
}

/// One point of a device type.
public struct ProfilePoint: Sendable, Hashable {
    public var name: String
    public var role: Role
    public var location: ProfileLocation
    /// Engineering value = raw x scale.
    public var scale: Double
    /// 16-bit two's complement.
    public var signed: Bool
    /// GPIO only: the line is active low.
    public var activeLow: Bool
    public var unit: String?
    public var min: Double?
    public var max: Double?
    /// Where the point is declared (1-based), for diagnostics.
    public var line: Int
    public var column: Int
}

/// A device type (`Devices/NAME.yaml`).
public struct DeviceProfile: Sendable, Hashable {
    public var name: String
    public var description: String
    public var file: String
    public var points: [ProfilePoint]

    public func point(_ name: String) -> ProfilePoint? { points.first { $0.name == name } }
}

/// Roles whose values are numbers, not bits: they cannot live on a coil, discrete input or GPIO line.
func isNumeric(_ role: Role) -> Bool {
    switch role {
    case .temperature, .oxygen, .co2, .humidity, .temperatureSetpoint, .dispatchDelay: return true
    default: return false
    }
}

/// Checks a writable range against the role's compiled envelope; reports every widening,
/// every bound outside the envelope and an empty range.
func checkRange(_ r: Reader, role: Role, min: (Double, Node)?, max: (Double, Node)?, what: String) -> Bool {
    var ok = true
    let env = role.envelope
    let envText = "\(role.rawValue) (\(fmt(env.lowerBound))-\(fmt(env.upperBound)))"
    if let (lo, n) = min {
        if lo < env.lowerBound {
            r.error(n, "\(what) min \(fmt(lo)) is wider than the compiled envelope of \(envText); a configuration may narrow an envelope, never widen it")
            ok = false
        } else if lo > env.upperBound {
            r.error(n, "\(what) min \(fmt(lo)) is outside the compiled envelope of \(envText)")
            ok = false
        }
    }
    if let (hi, n) = max {
        if hi > env.upperBound {
            r.error(n, "\(what) max \(fmt(hi)) is wider than the compiled envelope of \(envText); a configuration may narrow an envelope, never widen it")
            ok = false
        } else if hi < env.lowerBound {
            r.error(n, "\(what) max \(fmt(hi)) is outside the compiled envelope of \(envText)")
            ok = false
        }
    }
    if ok, let (lo, _) = min, let (hi, n) = max, lo > hi {
        r.error(n, "\(what) max \(fmt(hi)) is below min \(fmt(lo))")
        ok = false
    }
    return ok
}

enum ProfileParser {
    static let pointKeys = ["name", "role", "table", "address", "line", "scale", "signed", "active-low", "unit", "min", "max", "description"]

    struct Parsed {
        var name: String?
        var nameNode: Node?
        var profile: DeviceProfile?
    }

    static func parse(file: String, reader r: Reader) -> Parsed {
        guard let root = r.compose(),
              let f = r.fields(root, "device profile", allowed: ["profile", "description", "points"], required: ["profile", "description", "points"])
        else { return Parsed() }
        let name = f["profile"].flatMap { r.identifier($0, "profile name") }
        let description = f["description"].flatMap { r.string($0, "description") }
        var points: [ProfilePoint] = []
        var names: [String: Node] = [:]
        var addresses: [ProfileLocation: String] = [:]
        if let list = f["points"].flatMap({ r.sequence($0, "points") }) {
            if list.isEmpty { r.error(f["points"], "a profile needs at least one point") }
            for node in list {
                guard let p = point(node, r) else { continue }
                if let first = names[p.name] {
                    r.error(valueNode(node, "name") ?? node, "duplicate point name '\(p.name)' (first declared at \(first.mark?.description ?? "?"))")
                    continue
                }
                names[p.name] = node
                if let other = addresses[p.location] {
                    r.error(node, "point '\(p.name)' overlaps point '\(other)' at \(describe(p.location))")
                } else {
                    addresses[p.location] = p.name
                }
                points.append(p)
            }
        }
        guard let name, let description, r.diagnostics.isEmpty else { return Parsed(name: name, nameNode: f["profile"]) }
        return Parsed(name: name, nameNode: f["profile"],
                      profile: DeviceProfile(name: name, description: description, file: file, points: points))
    }

    /// The values a writable register must carry exactly, for its role: a temperature setpoint
    /// the compiled-in limits (15, 27 and 32 °C: the envelope and the occupied maximum), a
    /// boolean 0 and 1. Otherwise a write the policy allows (27 °C) would land as another value
    /// (28 °C with scale 2).
    static func exactValues(_ role: Role) -> [Double] {
        if role == .temperatureSetpoint {
            return [Limits.setpointEnvelope.lowerBound, Limits.occupiedMaxSetpoint, Limits.setpointEnvelope.upperBound]
        }
        return role.isBoolean ? [0, 1] : []
    }

    /// Reports, at `node`, a writable register whose encoding cannot carry `exactValues(role)` exactly.
    static func representsCompiledLimits(name: String, role: Role, table: ModbusTable, address: Int, scale: Double,
                                         signed: Bool, at node: Node, _ r: Reader) -> Bool {
        let wanted = exactValues(role)
        guard !wanted.isEmpty else { return true }
        let probe = Point(id: name, device: "", name: name, role: role, zone: "", bus: "", unitId: 1,
                          binding: .modbus(table: table, address: address, scale: scale, signed: signed))
        var wrong: [String] = []
        for v in wanted {
            let raw = ModbusRegisterCodec.encode(v, table: table, scale: scale, signed: signed)
            let landed = raw.map { ModbusRegisterCodec.decode(raw: $0, table: table, scale: scale, signed: signed) }
            if probe.quantized(v) == v { continue }
            let unit = role.unit.map { " \($0)" } ?? ""
            wrong.append(landed.map { "\(fmt(v))\(unit) would be written as \(short($0))\(unit)" }
                         ?? "\(fmt(v))\(unit) cannot be written at all (outside the register's range)")
        }
        guard !wrong.isEmpty else { return true }
        let need = wanted.dropLast().map(fmt).joined(separator: ", ") + " and " + fmt(wanted.last!)
        if role == .temperatureSetpoint {
            r.error(node, "point '\(name)' (\(role.rawValue)) cannot carry the compiled-in limits exactly with scale \(fmt(scale)): \(wrong.joined(separator: ", ")); use a scale that represents \(need) °C exactly, such as 0.1, 0.5 or 1")
        } else {
            r.error(node, "point '\(name)' (\(role.rawValue)) carries only \(need), but with scale \(fmt(scale)): \(wrong.joined(separator: ", ")); use scale 1")
        }
        return false
    }

    /// A value as an integrator would write it (at most 6 significant digits): 32.199999999999996 is 32.2.
    static func short(_ v: Double) -> String {
        guard v.isFinite, v != 0 else { return fmt(v) }
        let digits = max(0, 5 - Int(log10(abs(v)).rounded(.down)))
        let p = pow(10.0, Double(digits))
        return fmt((v * p).rounded() / p)
    }

    static func describe(_ l: ProfileLocation) -> String {
        switch l {
        case .register(let t, let a): return "\(t.rawValue) \(a)"
        case .line(let line): return "GPIO line \(line)"
        }
    }

    static func point(_ node: Node, _ r: Reader) -> ProfilePoint? {
        guard let f = r.fields(node, "profile point", allowed: pointKeys, required: ["name", "role"]) else { return nil }
        var ok = true
        let name = f["name"].flatMap { r.identifier($0, "point name") }
        var role: Role?
        if let rn = f["role"], let s = r.string(rn, "role") {
            role = Role(rawValue: s)
            if role == nil { r.error(rn, "unknown role '\(s)' (roles are a closed vocabulary, see docs/DESIGN.md §2)") }
        }
        var location: ProfileLocation?
        switch (f["table"], f["line"]) {
        case (let t?, nil):
            var table: ModbusTable?
            if let s = r.string(t, "table") {
                table = ModbusTable(rawValue: s)
                if table == nil {
                    r.error(t, "unknown table '\(s)' (coil, discrete-input, holding-register, input-register)")
                }
            }
            guard let an = f["address"] else {
                r.error(node, "a point with a table needs an address")
                ok = false
                break
            }
            if let table, let a = r.int(an, "address", in: 0...65535) { location = .register(table: table, address: a) }
            if let table, let role {
                if role.isOutput && !table.isWritable {
                    r.error(t, "role \(role.rawValue) is an output but \(table.rawValue) is read-only by protocol")
                    ok = false
                }
                if table.isBit && isNumeric(role) {
                    r.error(t, "role \(role.rawValue) carries numbers but \(table.rawValue) carries only 0 or 1")
                    ok = false
                }
            }
            if let s = f["active-low"] { r.error(s, "active-low applies only to GPIO lines"); ok = false }
        case (nil, let l?):
            if case .scalar(let s) = l, s.style == .plain, let o = Int(s.string) {
                if o < 0 || o > 511 { r.error(l, "GPIO line offset \(o) is outside 0-511"); ok = false }
                else { location = .line(.offset(o)) }
            } else if let s = r.string(l, "line") {
                location = .line(.name(s))
            }
            if let a = f["address"] { r.error(a, "address applies only to Modbus points (with a table)"); ok = false }
            for k in ["scale", "signed"] { if let n = f[k] { r.error(n, "\(k) applies only to Modbus registers"); ok = false } }
            if let role, isNumeric(role) {
                r.error(l, "role \(role.rawValue) carries numbers but a GPIO line carries only 0 or 1")
                ok = false
            }
        case (let t?, let l?):
            r.error(l, "a point has either a table or a line, not both")
            _ = t
            ok = false
        case (nil, nil):
            r.error(node, "a point needs a table (Modbus) or a line (GPIO)")
            ok = false
        }
        var scale = 1.0
        if let n = f["scale"] {
            if let s = r.double(n, "scale") {
                if !ModbusRegisterCodec.isValidScale(s) {
                    r.error(n, "scale \(fmt(s)) is not usable: engineering value = raw x scale needs a scale above 0")
                    ok = false
                } else {
                    scale = s
                }
                if case .register(let t, _)? = location, t.isBit { r.error(n, "scale applies only to registers"); ok = false }
            } else {
                ok = false
            }
        }
        var signed = false
        if let n = f["signed"], let s = r.bool(n, "signed") {
            signed = s
            if case .register(let t, _)? = location, t.isBit { r.error(n, "signed applies only to registers"); ok = false }
        }
        let activeLow = f["active-low"].flatMap { r.bool($0, "active-low") } ?? false
        let unit = f["unit"].flatMap { r.string($0, "unit") }
        _ = f["description"].flatMap { r.string($0, "description") }
        let min = f["min"].flatMap { n in r.double(n, "min").map { ($0, n) } }
        let max = f["max"].flatMap { n in r.double(n, "max").map { ($0, n) } }
        if let role, min != nil || max != nil {
            if !role.isOutput {
                r.error(f["min"] ?? f["max"], "min and max apply only to writable points; \(role.rawValue) is an input")
                ok = false
            } else if !checkRange(r, role: role, min: min, max: max, what: "point '\(name ?? "?")'") {
                ok = false
            }
        }
        if ok, let name, let role, case .register(let table, let address)? = location, !table.isBit, role.isOutput,
           !representsCompiledLimits(name: name, role: role, table: table, address: address, scale: scale, signed: signed,
                                     at: f["scale"] ?? node, r) {
            ok = false
        }
        guard ok, let name, let role, let location else { return nil }
        return ProfilePoint(name: name, role: role, location: location, scale: scale, signed: signed,
                            activeLow: activeLow, unit: unit, min: min?.0, max: max?.0,
                            line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }
}

/// The value node of `key` in the mapping `node`, if any.
func valueNode(_ node: Node, _ key: String) -> Node? {
    guard case .mapping(let m) = node else { return nil }
    for (k, v) in m where k.string == key { return v }
    return nil
}
