import MCP
import RedlineClient
import RedlineCore

enum MCPTools {
    static let all: [Tool] = [
        Tool(
            name: "list_points",
            title: "List building points",
            description: """
                List the building points you may read or write (id, safety role, zone, access, unit, range), \
                and the red lines that bind every write.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object", "properties": .object([:]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
        Tool(
            name: "read_points",
            title: "Read building points",
            description: """
                Read current values of points by id, with quality (good, stale or fault) and age in ms. \
                A point that is not good counts as its dangerous value for the red lines.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "ids": .object([
                        "type": "array", "items": .object(["type": "string"]), "minItems": 1,
                        "description": "Point ids from list_points, e.g. sra-env.temperature",
                    ])
                ]),
                "required": .array(["ids"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
        Tool(
            name: "write_point",
            title: "Ask to write a building point",
            description: """
                Ask Redline to write one point. The answer is one of: executed (written and read back), \
                held (waiting for a person to approve: poll get_request with the requestId, do not \
                resubmit), denied (a red line or a grant forbids it; final) or failed (device error).
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "id": .object(["type": "string", "description": "Point id from list_points, e.g. office-lights.on"]),
                    "value": .object(["type": "number", "description": "Value to write; booleans are 0 or 1"]),
                    "reason": .object([
                        "type": "string",
                        "description": "Why, for the people reading the audit log. It is never read by the decision.",
                    ]),
                ]),
                "required": .array(["id", "value"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true)),
        Tool(
            name: "release_point",
            title: "Release your command of a BACnet output",
            description: """
                Give back a BACnet output you commanded: Redline writes NULL at the agents' priority, so                 the next command below it (a schedule's, say) or the device's default value takes effect.                 It is decided like a write, on the value that will then take effect, and answered the same                 way (executed, held, denied or failed). Only points list_points marks releasable have a                 command to release; write the others.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "id": .object(["type": "string", "description": "A releasable point id from list_points, e.g. crac-1.setpoint"]),
                    "reason": .object([
                        "type": "string",
                        "description": "Why, for the people reading the audit log. It is never read by the decision.",
                    ]),
                ]),
                "required": .array(["id"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true)),
        Tool(
            name: "get_request",
            title: "Check a write request",
            description: """
                Show the outcome of an earlier write_point by its requestId: held (still waiting for a \
                person), executed, denied, failed or expired. Use it to follow held requests.
                \(MCPText.redLines)
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "requestId": .object(["type": "string", "description": "The requestId write_point returned"])
                ]),
                "required": .array(["requestId"]), "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: true)),
    ]

    /// Handles one `tools/call`. Malformed calls throw `MCPError.invalidParams`
    /// (a protocol error); everything the daemon says comes back as a tool result.
    static func call(_ p: CallTool.Parameters, link: DaemonLink) async throws -> CallTool.Result {
        let args = Args(tool: p.name, p.arguments ?? [:])
        switch p.name {
        case "list_points":
            try args.only([])
            return describeResult(await link.call("site.describe"))
        case "read_points":
            try args.only(["ids"])
            let ids = try args.strings("ids")
            return readResult(await link.call("points.read", .obj([("ids", .array(ids.map { .string($0) }))])))
        case "write_point":
            try args.only(["id", "value", "reason"])
            let id = try args.string("id")
            let value = try args.number("value")
            let reason = try args.optionalString("reason")
            let r = await link.call("points.write", .obj([("id", .string(id)), ("value", .number(value)), ("reason", reason.map { .string($0) })]))
            return answerResult(r, write: (id, value))
        case "release_point":
            try args.only(["id", "reason"])
            let id = try args.string("id")
            let reason = try args.optionalString("reason")
            return answerResult(await link.call("points.release", .obj([("id", .string(id)), ("reason", reason.map { .string($0) })])), write: nil)
        case "get_request":
            try args.only(["requestId"])
            let rid = try args.string("requestId")
            return answerResult(await link.call("requests.get", .obj([("requestId", .string(rid))])), write: nil)
        default:
            throw MCPError.invalidParams("unknown tool '\(p.name)'; the tools are \(all.map(\.name).joined(separator: ", "))")
        }
    }
}
