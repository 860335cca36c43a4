import RedlineCore
import Yams

/// A problem with a scenario file, with its position where known.
public struct ScenarioError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// YAML to the strict `JSON` model, keeping the order of mapping keys (a timeline must keep its order).
enum YAMLJSON {
    static func load(_ text: String, file: String) throws(ScenarioError) -> Node {
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ScenarioError("\(file):1: empty scenario file") }
            return node
        } catch let e as ScenarioError {
            throw e
        } catch {
            // Positions: libyaml's, where it gives one (1-based), else the first line.
            var line = 1
            switch error as? YamlError {
            case .scanner(_, _, let mark, _)?, .parser(_, _, let mark, _)?, .composer(_, _, let mark, _)?: line = max(1, mark.line)
            default: break
            }
            throw ScenarioError("\(file):\(line): not valid YAML: \(error)")
        }
    }

    static func json(_ node: Node) -> JSON {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if node.null != nil { return .null }
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .number(Double(i)) }
                if let d = node.float { return .number(d) }
            }
            return .string(s.string)
        case .sequence(let seq):
            return .array(seq.map { json($0) })
        case .mapping(let m):
            return .object(m.map { (k, v) in (k.string ?? "\(k)", json(v)) })
        case .alias:
            return .null
        }
    }

    /// The node's line, 1-based; 1 when libyaml gives none.
    static func line(_ node: Node) -> Int { max(1, node.mark?.line ?? 1) }
}
