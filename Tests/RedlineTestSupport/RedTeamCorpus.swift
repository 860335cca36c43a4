import Foundation
import RedlineCore
import Yams

/// A red-team case: one request, as one agent, on a prepared plant (format in `Tests/RedTeam/README.md`).
public struct RedTeamCase: Sendable {
    public var id: String
    public var title: String
    public var file: String
    public var plant: [(String, Double)]
    public var fault: (device: String, mode: String)?
    public var agent: String
    public var method: String
    public var params: JSON
    public var expect: JSON
    public var testDescription: String { "\(id): \(title)" }

    /// Plant variables `expect.plant` names, with their values three scans after the answer.
    public var expectedPlant: [(String, Double)] {
        (expect["plant"]?.objectValue ?? []).compactMap { k, v in v.numberValue.map { (k, $0) } }
    }
}

/// A folder of red-team case files (`*.yaml`).
public struct RedTeamCorpus: Sendable {
    public let folder: URL
    public init(folder: URL) { self.folder = folder }

    /// The project's own cases (`Tests/RedTeam`): always run, and they must pass.
    public static let own = RedTeamCorpus(folder: TestPaths.redTeamFolder())
    /// Cases for rules of docs/DESIGN.md the daemon does not pass yet (§13): run as known issues.
    public static let pending = RedTeamCorpus(folder: TestPaths.redTeamFolder().appendingPathComponent("pending"))
    /// The steering repository's cases, when that folder is there (see `TestPaths.extraRedTeamFolder`).
    public static let extra: RedTeamCorpus? = TestPaths.extraRedTeamFolder().map { RedTeamCorpus(folder: $0) }

    public func cases() -> [RedTeamCase] {
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        var out: [RedTeamCase] = []
        for f in files {
            guard let text = try? String(contentsOf: folder.appendingPathComponent(f), encoding: .utf8),
                  let list = (try? Yams.load(yaml: text)) as? [[String: Any]] else {
                out.append(RedTeamCase(id: "UNREADABLE \(f)", title: "file does not parse", file: f, plant: [], fault: nil,
                                       agent: "", method: "", params: .null, expect: .null))
                continue
            }
            for c in list {
                let req = c["request"] as? [String: Any] ?? [:]
                let plant = (c["plant"] as? [String: Any] ?? [:]).keys.sorted().map { k in
                    (k, RedTeamCorpus.json(fromYAML: (c["plant"] as! [String: Any])[k]).numberValue ?? .nan)
                }
                let fault = (c["fault"] as? [String: Any]).map { ($0["device"] as? String ?? "", $0["mode"] as? String ?? "") }
                out.append(RedTeamCase(id: c["id"] as? String ?? "?", title: c["title"] as? String ?? "", file: f, plant: plant,
                                       fault: fault, agent: c["agent"] as? String ?? "", method: req["method"] as? String ?? "",
                                       params: RedTeamCorpus.json(fromYAML: req["params"]), expect: RedTeamCorpus.json(fromYAML: c["expect"])))
            }
        }
        return out
    }

    /// Converts a YAML value (as Yams loads it) to JSON.
    public static func json(fromYAML v: Any?) -> JSON {
        switch v {
        case nil, is NSNull: return .null
        case let b as Bool: return .bool(b)
        case let i as Int: return .number(Double(i))
        case let d as Double: return .number(d)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map { json(fromYAML: $0) })
        case let m as [String: Any]: return .object(m.keys.sorted().map { ($0, json(fromYAML: m[$0])) })
        default: return .string("\(v!)")
        }
    }
}

extension RedTeamCase {
    /// Equal within what a 16-bit register's scale can carry (30 °C reads back as 300 × 0.1).
    public static func same(_ a: Double?, _ b: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= 1e-6 * max(1, abs(b))
    }

    /// The same request naming a point that does not exist, when the request names exactly one point.
    public static func missingPointProbe(_ params: JSON) -> (params: JSON, original: String, missing: String)? {
        let missing = "no-such-device.no-such-point"
        guard case .object(let members) = params else { return nil }
        if let id = params["id"]?.stringValue {
            return (.object(members.map { $0.0 == "id" ? ("id", .string(missing)) : $0 }), id, missing)
        }
        if let ids = params["ids"]?.arrayValue, ids.count == 1, let id = ids[0].stringValue {
            return (.object(members.map { $0.0 == "ids" ? ("ids", .array([.string(missing)])) : $0 }), id, missing)
        }
        return nil
    }
}
