import Foundation

/// Where each target's seed corpus comes from: the project's own files (scripts/fuzz.sh copies
/// them, with generated seeds, into a git-ignored work folder).
public enum FuzzSeeds {
    /// Files (relative to the project root, folders searched recursively) seeding `target`.
    public static func sources(target: String) -> [String] {
        switch target {
        case "json", "rpc-lines": return ["Tests/RedTeam", "Tests/interop", "Tests/mcp"]
        case "site-yaml": return ["Firmware-Configs", "Tests/RedlineConfigTests/Fixtures/sites"]
        case "scenario-yaml": return ["Simulators/Scenarios", "Tests/RedTeam"]
        default: return []
        }
    }

    /// The seed files of `target` that exist, YAML/JSON/JSONL only.
    public static func files(target: String, root: String) -> [String] {
        sources(target: target).flatMap { FuzzHarness.files(at: root + "/" + $0) }
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") || $0.hasSuffix(".jsonl") }
    }
}
