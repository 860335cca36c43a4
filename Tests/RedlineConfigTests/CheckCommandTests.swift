import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// `redlinectl check` and `check --matrix`, run as real processes on the demo site.
@Suite("redlinectl check (real process)")
struct CheckCommandTests {
    /// The folder holding the built executables: $REDLINE_BIN, or next to the test bundle, or .build/debug.
    static func binary(_ name: String) throws -> String {
        var candidates: [URL] = []
        if let dir = ProcessInfo.processInfo.environment["REDLINE_BIN"] { candidates.append(URL(fileURLWithPath: dir)) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        for _ in 0..<4 {
            url = url.deletingLastPathComponent()
            candidates.append(url)
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug"))
        for c in candidates {
            let path = c.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw CheckError.notBuilt("\(name) not found (run `swift build` first); looked in \(candidates.map(\.path))")
    }

    enum CheckError: Error { case notBuilt(String) }

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String]) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary("redlinectl"))
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes fully before waiting, so a large matrix cannot block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test("check on the demo sites prints ok with the counts", arguments: [demoSite, demoGPIOSite])
    func ok(file: String) throws {
        let r = try Self.run(["check", file])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok: summitbridge-dc2 (39 points, 2 agents)\n")
    }

    @Test("check on a broken site prints every diagnostic and exits non-zero")
    func broken() throws {
        let file = FixtureTests.fixtures.appendingPathComponent("sites/several-errors.yaml").path
        let r = try Self.run(["check", file, "--devices", devicesDir])
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let expected = diagnostics(site: file).map(\.description)
        #expect(expected.count == 6)
        #expect(Array(lines.prefix(expected.count)) == expected)
        #expect(lines.last == "6 errors in \(file)")
        #expect(lines.allSatisfy { $0.hasPrefix(file + ":") || $0.hasSuffix("errors in \(file)") })
        #expect(r.stdout.isEmpty)
    }

    /// Cells of one row of the text matrix, keyed by column header. Continuation lines are appended.
    static func textCells(_ text: String, row: String) throws -> [String: String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let headerIndex = try #require(lines.firstIndex { $0.hasPrefix("point ") && $0.contains(" | ") })
        let headers = lines[headerIndex].components(separatedBy: " | ").map { $0.trimmingCharacters(in: .whitespaces) }
        let start = try #require(lines.firstIndex { $0.components(separatedBy: " | ").first?.trimmingCharacters(in: .whitespaces) == row })
        var cells: [String: String] = [:]
        var i = start
        repeat {
            let parts = lines[i].components(separatedBy: " | ")
            for (h, c) in zip(headers, parts) {
                let t = c.trimmingCharacters(in: .whitespaces)
                if !t.isEmpty { cells[h] = cells[h].map { $0 + "; " + t } ?? t }
            }
            i += 1
        } while i < lines.count && lines[i].hasPrefix(" ") && lines[i].contains(" | ")
        // Every line of the table has the same column positions.
        let bars = lines[headerIndex].indices.filter { lines[headerIndex][$0] == "|" }.map { lines[headerIndex].distance(from: lines[headerIndex].startIndex, to: $0) }
        let rowBars = lines[start].indices.filter { lines[start][$0] == "|" }.map { lines[start].distance(from: lines[start].startIndex, to: $0) }
        #expect(bars == rowBars, "columns are not aligned")
        return cells
    }

    @Test("check --matrix: dispatch.cancel is RL-2 for facilities-agent, the door lock names RL-3")
    func matrixText() throws {
        let r = try Self.run(["check", "--matrix", demoSite])
        #expect(r.status == 0, "\(r.stderr)")
        let fa = "facilities-agent (uid 2001)", ra = "reporting-agent (uid 2002)"
        let cancel = try Self.textCells(r.stdout, row: "dispatch.cancel")
        #expect(cancel[fa] == "denied RL-2")
        #expect(cancel[ra] == "not visible")
        #expect(cancel["role"] == "dispatch-cancel")
        for (row, rule) in [("fire-panel.silence", "RL-1"), ("fire-panel.reset", "RL-1"), ("dispatch.delay", "RL-2"),
                            ("sra-suppression.release", "RL-4"), ("sra-suppression.inhibit", "RL-4")] {
            #expect(try Self.textCells(r.stdout, row: row)[fa] == "denied \(rule)", "\(row)")
        }
        let lock = try #require(try Self.textCells(r.stdout, row: "sra-door.lock")[fa])
        #expect(lock.contains("release allowed"))
        #expect(lock.contains("denied RL-3 when occupied/in alarm/hazard"))
        #expect(lock.contains("(approval) when calm"))
        let stop = try #require(try Self.textCells(r.stdout, row: "crac-1.run")[fa])
        #expect(stop.contains("denied RL-5 when occupied"))
        #expect(try Self.textCells(r.stdout, row: "crac-1.run")[ra] == "read (no write grant)")
        // general-output is not a life-safety point.
        #expect(!r.stdout.contains("office-lights.on"))
    }

    /// Issue 17: the BACnet demo passes `redlinectl check`, and the matrix shows its BACnet points
    /// with the same red lines as on Modbus, and the agents' priority.
    @Test func bacnetDemoChecksAndItsMatrixShowsTheBACnetPoints() throws {
        let ok = try Self.run(["check", demoBACnetSite])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "ok: summitbridge-dc2-bacnet (39 points, 2 agents)\n")
        let r = try Self.run(["check", "--matrix", demoBACnetSite])
        #expect(r.status == 0, "\(r.stderr)")
        let fa = "facilities-agent (uid 2001)"
        #expect(r.stdout.contains("BACnet/IP: 20 points, 13 of them outputs; any agent write to them is at priority 9 only (Present_Value; a release writes NULL there, and only there)"), "\(r.stdout.prefix(2000))")
        #expect(try Self.textCells(r.stdout, row: "fire-panel.reset")[fa] == "denied RL-1")
        #expect(try Self.textCells(r.stdout, row: "sra-door.lock")[fa]?.contains("denied RL-3 when occupied") == true)
        #expect(try Self.textCells(r.stdout, row: "crac-1.run")[fa]?.contains("denied RL-5 when occupied") == true)
        #expect(try Self.textCells(r.stdout, row: "fire-panel.alarm")["role"] == "fire-alarm")
        // The Modbus demo's matrix has no BACnet line.
        #expect(!(try Self.run(["check", "--matrix", demoSite])).stdout.contains("BACnet/IP:"))
    }

    @Test("check --matrix --json agrees with the policy for every cell")
    func matrixJSON() throws {
        let r = try Self.run(["check", "--matrix", "--json", demoSite])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSON.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(json["site"]?.stringValue == "summitbridge-dc2")
        let rows = try #require(json["rows"]?.arrayValue)
        let cancel = try #require(rows.first { $0["point"]?.stringValue == "dispatch.cancel" })
        let cells = try #require(cancel["cells"]?.arrayValue)
        let fa = try #require(cells.first { $0["agent"]?.stringValue == "facilities-agent" })
        #expect(fa["summary"]?.stringValue == "denied RL-2")
        let outcomes = try #require(fa["outcomes"]?.arrayValue)
        #expect(!outcomes.isEmpty)
        #expect(outcomes.allSatisfy { $0["result"]?.stringValue == "RL-2" })

        // Every outcome is what Policy.decide says on the same scenario: recompute it in-process.
        let site = try SiteLoader.load(siteFile: demoSite)
        var checked = 0
        for row in rows {
            let id = try #require(row["point"]?.stringValue)
            let point = try #require(site.point(id))
            #expect(CauseEffectMatrix.isLifeSafety(point.role))
            for cell in try #require(row["cells"]?.arrayValue) {
                let agent = try #require(cell["agent"]?.stringValue)
                for o in try #require(cell["outcomes"]?.arrayValue) {
                    let value = try #require(o["value"]?.numberValue)
                    let scenario = try #require(o["scenario"]?.stringValue.flatMap(CauseEffectMatrix.Scenario.init(rawValue:)))
                    let state = CauseEffectMatrix.state(site: site, snapshot: CauseEffectMatrix.snapshot(site, scenario))
                    let d = Policy.decideQuantized(WriteCommand(agent: agent, point: id, value: value), in: state).1
                    #expect(o["result"]?.stringValue == CauseEffectMatrix.result(d), "\(agent) \(id)=\(value) \(scenario)")
                    checked += 1
                }
            }
        }
        #expect(checked > 100)
    }

    @Test("check on a missing file fails with a diagnostic")
    func missing() throws {
        let r = try Self.run(["check", "/nonexistent/site.yaml"])
        #expect(r.status != 0)
        #expect(r.stderr.split(separator: "\n").contains { $0.hasPrefix("/nonexistent/site.yaml:1:1: cannot read file") })
    }
}
