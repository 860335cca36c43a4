import RedlineHIL

/// `scenario-yaml`: Scenario.parse on HIL scenario YAML (seeded from Simulators/Scenarios).
///
/// Oracles: no crash, and every error names the file and a line: `FILE:LINE: message`, LINE >= 1.
public enum ScenarioOracle {
    public static let file = "fuzz-scenario.yaml"

    public static func check(_ input: [UInt8]) throws(OracleFailure) {
        let text = String(decoding: input, as: UTF8.self)
        do {
            _ = try Scenario.parse(text, file: file)
        } catch {
            let d = error.description
            guard d.hasPrefix(file + ":") else { throw OracleFailure("error without the file: \(d)") }
            let rest = d.dropFirst(file.count + 1)
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard let line = Int(digits), line >= 1, rest.dropFirst(digits.count).hasPrefix(":") else {
                throw OracleFailure("error without a line: \(d)")
            }
        }
    }
}
