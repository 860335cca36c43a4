import Foundation
import RedlineCore

/// What happened at one step.
public struct StepResult: Sendable {
    public enum Status: String, Sendable { case passed, failed, skipped }
    public var index: Int
    public var line: Int
    public var title: String
    public var status: Status
    /// What was observed (the daemon's answer, the readings, the engineer's confirmation).
    public var detail: String
    public var at: Date
    public var seconds: Double
    public var violations: [Violation]

    public var passed: Bool { status != .failed }
}

/// The result of one scenario.
public struct ScenarioResult: Sendable {
    public var name: String
    public var file: String
    public var mode: String
    public var steps: [StepResult] = []
    /// Invariant violations seen anywhere in the run (also attached to the step after which they were seen).
    public var violations: [Violation] = []
    /// Invariant checks done (each a full look at the plant).
    public var checks = 0
    /// A problem that stopped the run (connection refused, bad site ...).
    public var error: String?
    public var started = Date()
    public var seconds = 0.0
    /// How each agent was connected.
    public var connections: [String] = []
    public var auditVerdict: String?

    public var passed: Bool { error == nil && violations.isEmpty && steps.allSatisfy(\.passed) }
    public var failedSteps: [StepResult] { steps.filter { $0.status == .failed } }
}

public enum Reports {
    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    /// A readable summary.
    public static func summary(_ results: [ScenarioResult]) -> String {
        var s = ""
        for r in results {
            s += "\(r.passed ? "PASS" : "FAIL") \(r.name) (\(r.file)): \(r.steps.count) steps, \(r.failedSteps.count) failed, "
            s += "\(r.violations.count) invariant violations, \(r.checks) invariant checks, \(String(format: "%.1f", r.seconds)) s\n"
            if let e = r.error { s += "  error: \(e)\n" }
            for st in r.failedSteps { s += "  step \(st.index) (line \(st.line)) \(st.title): \(st.detail)\n" }
            for v in r.violations { s += "  INVARIANT \(v)\n" }
            if let a = r.auditVerdict { s += "  audit log: \(a)\n" }
        }
        let failed = results.filter { !$0.passed }.count
        s += "\(results.count - failed) of \(results.count) scenarios passed\n"
        return s
    }

    static func xml(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&apos;"
            case "\n", "\t": o.unicodeScalars.append(c)
            default:
                if c.value < 0x20 || (c.value >= 0xD800 && c.value <= 0xDFFF) || c.value == 0xFFFE || c.value == 0xFFFF { o += "?" } else { o.unicodeScalars.append(c) }
            }
        }
        return o
    }

    /// JUnit XML: one testsuite per scenario, one testcase per step, plus one for the invariants.
    public static func junit(_ results: [ScenarioResult]) -> String {
        var body = ""
        var total = 0, failures = 0, errors = 0, skipped = 0
        var time = 0.0
        for r in results {
            let cases = r.steps.count + 1
            let f = r.failedSteps.count + (r.violations.isEmpty ? 0 : 1)
            let e = r.error == nil ? 0 : 1
            let sk = r.steps.filter { $0.status == .skipped }.count
            total += cases; failures += f; errors += e; skipped += sk; time += r.seconds
            body += "  <testsuite name=\"\(xml(r.name))\" tests=\"\(cases)\" failures=\"\(f)\" errors=\"\(e)\" skipped=\"\(sk)\" time=\"\(String(format: "%.3f", r.seconds))\" timestamp=\"\(iso(r.started))\">\n"
            body += "    <properties><property name=\"file\" value=\"\(xml(r.file))\"/><property name=\"mode\" value=\"\(r.mode)\"/><property name=\"invariant-checks\" value=\"\(r.checks)\"/></properties>\n"
            for st in r.steps {
                body += "    <testcase classname=\"hil.\(xml(r.name))\" name=\"\(xml(String(format: "%03d", st.index))) \(xml(st.title))\" time=\"\(String(format: "%.3f", st.seconds))\">"
                switch st.status {
                case .failed: body += "<failure message=\"\(xml(st.detail))\">line \(st.line): \(xml(st.detail))</failure>"
                case .skipped: body += "<skipped message=\"\(xml(st.detail))\"/>"
                case .passed: body += "<system-out>\(xml(st.detail))</system-out>"
                }
                body += "</testcase>\n"
            }
            body += "    <testcase classname=\"hil.\(xml(r.name))\" name=\"invariants (\(r.checks) checks)\" time=\"0\">"
            if !r.violations.isEmpty {
                body += "<failure message=\"\(r.violations.count) invariant violations\">\(xml(r.violations.map(\.description).joined(separator: "\n")))</failure>"
            }
            if let err = r.error { body += "<error message=\"\(xml(err))\"/>" }
            body += "</testcase>\n"
            body += "  </testsuite>\n"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"redline-hil\" tests=\"\(total)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\" time=\"\(String(format: "%.3f", time))\">\n" + body + "</testsuites>\n"
    }

    static func md(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// A proof-test record a safety engineer can file (Markdown).
    public static func proofRecord(_ results: [ScenarioResult], site: Site, siteFile: String?, engineer: String?) -> String {
        var s = "# Proof-test record: \(md(site.name))\n\n"
        s += "| | |\n| --- | --- |\n"
        s += "| Site | \(md(site.name))\(siteFile.map { " (`\($0)`)" } ?? "") |\n"
        s += "| Controller | \(md(ProcessInfo.processInfo.hostName)) |\n"
        s += "| Started | \(results.first.map { iso($0.started) } ?? "-") |\n"
        s += "| Engineer | \(md(engineer ?? "________________")) |\n"
        s += "| Result | **\(results.allSatisfy(\.passed) ? "PASS" : "FAIL")** |\n\n"
        for r in results {
            s += "## Scenario `\(md(r.name))`: \(r.passed ? "PASS" : "FAIL")\n\n"
            s += "File `\(md(r.file))`, mode \(r.mode), \(r.steps.count) steps, \(r.checks) invariant checks, \(r.violations.count) violations.\n\n"
            for c in r.connections { s += "- Agent connection: \(md(c))\n" }
            if let a = r.auditVerdict { s += "- Audit log: \(md(a))\n" }
            if let e = r.error { s += "- **Stopped:** \(md(e))\n" }
            s += "\n| # | time (UTC) | step | result | evidence |\n| --- | --- | --- | --- | --- |\n"
            for st in r.steps {
                let mark = st.status == .passed ? "pass" : (st.status == .failed ? "**FAIL**" : "skipped")
                s += "| \(st.index) | \(iso(st.at)) | \(md(st.title)) | \(mark) | \(md(st.detail)) |\n"
            }
            if !r.violations.isEmpty {
                s += "\n### Invariant violations\n\n"
                for v in r.violations { s += "- \(md(v.description))\n" }
            }
            s += "\n"
        }
        s += "## Sign-off\n\nTested by: ________________  Date: __________  Signature: ________________\n\n"
        s += "Witnessed by: ________________  Date: __________  Signature: ________________\n"
        return s
    }
}
