import Foundation
import RedlineCore
import Yams

/// Where a profile point lives on its device.
public enum ProfileLocation: Sendable, Hashable {
    /// A Modbus table and 0-based address.
    case register(table: ModbusTable, address: Int)
    /// A GPIO line; bound per device in the site (`lines:`), this is the default.
    case line(GPIOLine)
    /// A BACnet object and property (the device is named by its device instance in the site).
    case bacnet(BACnetPointAddress)

    public var isGPIO: Bool { if case .line = self { return true } else { return false } }

    /// The kind of bus the point needs.
    var family: BusFamily {
        switch self {
        case .register: return .modbus
        case .line: return .gpio
        case .bacnet: return .bacnet
        }
    }
}

/// The three kinds of bus a profile point can live on.
enum BusFamily: String {
    case modbus = "Modbus"
    case gpio = "GPIO"
    case bacnet = "BACnet"

    init(_ kind: BusKind) {
        switch kind {
        case .modbusTCP, .modbusRTU: self = .modbus
        case .gpio: self = .gpio
        case .bacnetIP: self = .bacnet
        }
    }

    /// "a Modbus bus", "a GPIO bus", "a BACnet/IP bus".
    var aBus: String { self == .bacnet ? "a BACnet/IP bus" : "a \(rawValue) bus" }
    /// "Modbus points", "GPIO line points", "BACnet points".
    var points: String { self == .gpio ? "GPIO line points" : "\(rawValue) points" }
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
    static let pointKeys = ["name", "role", "table", "address", "line", "object", "instance", "property",
                            "scale", "signed", "active-low", "unit", "min", "max", "description"]

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

    /// Object types a point may name: those whose Present_Value is a number a role can mean.
    static let pointObjectTypes: [BACnetObjectType] = [
        .analogInput, .analogOutput, .analogValue, .binaryInput, .binaryOutput, .binaryValue,
        .multiStateInput, .multiStateOutput, .multiStateValue, .lifeSafetyPoint, .lifeSafetyZone,
    ]

    /// A BACnet point's object, instance and property, checked against its role (issue 17):
    /// - the object type is one a point can use, the instance 0-4194302;
    /// - a writable point (an output role) targets Present_Value of an analog/binary output or
    ///   value, and never a property agents may not write (Out_Of_Service, Reliability,
    ///   Relinquish_Default, Priority_Array, notification properties...: RL-8);
    /// - an input reads Present_Value (Status_Flags and Reliability are read with it, RL-0);
    /// - boolean roles live on binary objects (alarm and trouble inputs also on life-safety
    ///   objects), numeric roles on analog objects, `status` on multi-state or analog objects.
    static func bacnetLocation(_ f: Fields, role: Role?, _ r: Reader) -> BACnetPointAddress? {
        var ok = true
        var type: BACnetObjectType?
        let on = f["object"]!
        if let s = r.string(on, "object") {
            type = BACnetObjectType(yamlName: s)
            if type == nil {
                r.error(on, "unknown object type '\(s)' (a point's object is one of \(pointObjectTypes.map(\.yamlName).joined(separator: ", ")))")
            } else if let t = type, !pointObjectTypes.contains(t) {
                r.error(on, "a \(s) object cannot carry a point: a point's object is one of \(pointObjectTypes.map(\.yamlName).joined(separator: ", "))")
                type = nil
            }
        }
        var instance: UInt32?
        if let n = f["instance"] {
            if case .scalar(let s) = n, s.style == .plain, let v = Int(s.string) {
                if let id = BACnetObjectId.valid(type: type ?? .analogValue, instance: v) { instance = id.instance }
                else { r.error(n, "object instance \(v) is outside 0-\(BACnetObjectId.maxInstance) (4194303 is BACnet's wildcard, never a real object)") }
            } else {
                r.error(n, "instance must be an integer, not \(r.kind(n))")
            }
        } else {
            r.error(f.node, "a point with an object needs an instance")
            ok = false
        }
        var property = BACnetPropertyId.presentValue
        let pn = f["property"]
        if let pn, let s = r.string(pn, "property") {
            if let p = BACnetPropertyId(yamlName: s) { property = p }
            else { r.error(pn, "unknown property '\(s)' (the point's property is present-value, the default)"); ok = false }
        } else if pn != nil {
            ok = false
        }
        guard ok, let type, let instance, let role else { return nil }
        let address = BACnetPointAddress(object: BACnetObjectId(type: type, instance: instance), property: property)
        if role.isOutput {
            if let why = address.agentWriteRefusal {
                // The forbidden property is the offending node when there is one; else the object.
                let at = property != .presentValue ? pn : on
                let what = property != .presentValue
                    ? "point of role \(role.rawValue) is writable by agents, but \(why) (RL-8)"
                    : "role \(role.rawValue) is an output but \(type.yamlName) objects cannot be commanded by an agent\(type.isLifeSafety ? " (life-safety objects answer only to LifeSafetyOperation, which Redline never sends)" : [.analogInput, .binaryInput, .multiStateInput].contains(type) ? ": an input's present-value is read-only by protocol (writable only out of service)" : "") (RL-8)"
                r.error(at, what)
                return nil
            }
        } else if property != .presentValue {
            r.error(pn, "an input reads present-value (its status-flags and reliability are read with it, to judge it: RL-0), not \(property.yamlName)")
            return nil
        }
        let fits: Bool
        let carries: String
        if type.isLifeSafety {
            fits = BACnetLifeSafetyState.carries(role)
            carries = "a life-safety state, which maps only to fire-alarm, gas-alarm, suppression-predischarge, suppression-discharged and fire-trouble"
        } else if type.carriesBinary {
            fits = role.isBoolean
            carries = "only 0 or 1"
        } else if type.carriesState {
            fits = role == .status
            carries = "a state number, which only a status input can mean"
        } else {
            fits = !role.isBoolean
            carries = "a number, not the 0 or 1 of \(role.rawValue); use a binary object"
        }
        guard fits else {
            r.error(on, "role \(role.rawValue) cannot live on object type \(type.yamlName): it carries \(carries)")
            return nil
        }
        return address
    }

    static func describe(_ l: ProfileLocation) -> String {
        switch l {
        case .register(let t, let a): return "\(t.rawValue) \(a)"
        case .line(let line): return "GPIO line \(line)"
        case .bacnet(let a): return "\(a)"
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
        let kinds = ["table", "line", "object"].filter { f.has($0) }
        if kinds.count > 1 {
            r.error(f.keys[kinds[1]], "a point has exactly one of table (Modbus), line (GPIO) or object (BACnet), not both \(kinds[0]) and \(kinds[1])")
            ok = false
        } else if kinds == ["object"] {
            if let a = bacnetLocation(f, role: role, r) { location = .bacnet(a) } else { ok = false }
            for k in ["address", "scale", "signed", "active-low"] {
                if let n = f[k] { r.error(f.keys[k] ?? n, "\(k) applies only to \(k == "active-low" ? "GPIO lines" : "Modbus points"), not to a BACnet object"); ok = false }
            }
        } else {
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
        case (_?, _?):
            ok = false  // reported above
        case (nil, nil):
            r.error(node, "a point needs a table (Modbus), a line (GPIO) or an object (BACnet)")
            ok = false
        }
        }
        if !kinds.contains("object") {
            for k in ["instance", "property"] {
                if let n = f.keys[k] { r.error(n, "\(k) applies only to BACnet points (with an object)"); ok = false }
            }
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
