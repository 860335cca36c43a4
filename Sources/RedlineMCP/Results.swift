#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MCP
import RedlineClient
import RedlineCore

/// Daemon answers as MCP tool results: everything redlined says, and every transport failure, is
/// a result the model can read (denials and failures with isError set).
extension MCPTools {
    static func describeResult(_ r: Result<JSON, ClientError>) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: nil)
        case .success(let x): v = x
        }
        var lines = ["site \(v["site"]?.stringValue ?? "?"), you are agent \(v["agent"]?.stringValue ?? "?"); your points:"]
        for p in v["points"]?.arrayValue ?? [] {
            var extra = ""
            if let lo = p["min"]?.numberValue, let hi = p["max"]?.numberValue { extra += ", range \(fmt(lo))..\(fmt(hi))" }
            if let u = p["unit"]?.stringValue { extra += ", unit \(u)" }
            lines.append("- \(p["id"]?.stringValue ?? "?"): \(p["access"]?.stringValue ?? "?"), role \(p["role"]?.stringValue ?? "?"), zone \(p["zone"]?.stringValue ?? "?")\(extra)")
        }
        lines.append("")
        lines.append(MCPText.redLines)
        return result(lines.joined(separator: "\n"), structured: value(v), isError: false)
    }

    static func readResult(_ r: Result<JSON, ClientError>) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: nil)
        case .success(let x): v = x
        }
        var lines: [String] = []
        for x in v["values"]?.arrayValue ?? [] {
            let val = x["value"]?.numberValue.map(fmt) ?? "no value"
            let age = x["ageMs"]?.numberValue.map { "\(fmt($0)) ms ago" } ?? "never read"
            lines.append("\(x["id"]?.stringValue ?? "?") = \(val) (\(x["quality"]?.stringValue ?? "?"), \(age))")
        }
        return result(lines.joined(separator: "\n"), structured: value(v), isError: false)
    }

    /// A `points.write` or `requests.get` answer.
    static func answerResult(_ r: Result<JSON, ClientError>, write: (id: String, value: Double)?) -> CallTool.Result {
        let v: JSON
        switch r {
        case .failure(let e): return failure(e, write: write)
        case .success(let x): v = x
        }
        let rid = v["requestId"]?.stringValue ?? "?"
        let explanation = v["explanation"]?.stringValue ?? ""
        let outcome = v["outcome"]?.stringValue ?? "?"
        let text: String
        let isError: Bool
        switch outcome {
        case "executed":
            text = "executed (request \(rid)): \(explanation)"
            isError = false
        case "held":
            text = """
                held (request \(rid)): \(explanation)
                This write waits for a person to approve it. Poll get_request with requestId "\(rid)" \
                until its outcome is executed, denied or expired. Do not submit the write again.
                """
            isError = false
        case "denied":
            let rule = v["rule"]?.stringValue ?? "unknown rule"
            let title = RedLines.all.first { $0.id.rawValue == rule }.map { " (\($0.title))" } ?? ""
            text = """
                DENIED by \(rule)\(title) (request \(rid)): \(explanation)
                \(MCPText.finality)
                """
            isError = true
        case "failed":
            text = """
                FAILED (request \(rid)): \(explanation)
                The device did not confirm the write. Read the point before deciding anything; \
                report the failure to a person.
                """
            isError = true
        case "expired":
            text = "expired (request \(rid)): \(explanation)\nNo person approved it in time; it was not executed."
            isError = true
        default:
            text = "unexpected answer from redlined (outcome \(outcome)); treat the write as not done: \(v.encoded())"
            isError = true
        }
        return result(text, structured: value(v), isError: isError)
    }

    /// Daemon errors and connection failures, as error results the model can read.
    static func failure(_ e: ClientError, write: (id: String, value: Double)?) -> CallTool.Result {
        let text: String
        switch e {
        case .rpc(let code, let message, _):
            switch code {
            case -32004:
                text = "unknown point: \(message). It does not exist or is not granted to you (the two look the same). Only the points list_points shows exist for you."
            case -32602:
                text = "redlined refused the parameters (\(code)): \(message)"
            case -32005:
                text = "redlined is rate-limiting this agent (\(code)): \(message). Slow down; nothing was done."
            case -32006:
                text = "redlined does not admit this MCP server (\(code)): \(message). It runs as uid \(getuid()), "
                    + "which is not an agent of the site: it must be started as the agent's own uid. "
                    + "Nothing was read or written; tell a person."
            default:
                text = "redlined answered with error \(code): \(message)"
            }
        case .connect:
            text = "cannot reach redlined: \(e). Nothing was read or written. The interlock is not available; do not try to reach the building another way. Tell a person."
        case .io, .closed, .timeout, .protocolError:
            text = write == nil
                ? "the connection to redlined failed: \(e). Try again later or tell a person."
                : "the connection to redlined failed during the write: \(e). Its outcome is unknown: read the point before doing anything else, and tell a person."
        }
        var detail: [(String, JSON?)] = [("error", .string(text))]
        if case .rpc(let code, _, _) = e { detail.append(("code", .number(Double(code)))) }
        return result(text, structured: value(.obj(detail)), isError: true)
    }

    static func result(_ text: String, structured: Value, isError: Bool) -> CallTool.Result {
        // The non-throwing initialiser (the generic one would encode `Value` again).
        let make: ([Tool.Content], Value?, Bool?, Metadata?) -> CallTool.Result = CallTool.Result.init(content:structuredContent:isError:_meta:)
        return make([.text(text: text, annotations: nil, _meta: nil)], structured, isError, nil)
    }

    /// Our JSON to the SDK's `Value`.
    static func value(_ j: JSON) -> Value {
        switch j {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 9.0e15 { return .int(Int(n)) }
            return .double(n)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(value))
        case .object(let o):
            var d: [String: Value] = [:]
            for (k, v) in o { d[k] = value(v) }
            return .object(d)
        }
    }
}
