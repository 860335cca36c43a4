import Foundation
import RedlineCore
import RedlineTestSupport
import Testing

/// A scripted engineer for `redline-hil run --guided`: reads each prompt the way a person
/// would, performs the physical step on the simulated plant (through the simulator's control
/// socket, standing in for the real world), and presses Enter, or answers y/n to a question
/// after looking at the plant.
final class ScriptedEngineer {
    let sim: SimProcess
    /// Prompts whose step the engineer "forgets" to perform (presses Enter without acting).
    let skip: Set<String>
    /// After this many answers the engineer walks away (closes the runner's stdin).
    let answers: Int?
    var prompts: [String] = []
    var transcript = ""

    init(sim: SimProcess, skip: Set<String> = [], answers: Int? = nil) {
        self.sim = sim
        self.skip = skip
        self.answers = answers
    }

    /// Does what the `simulator equivalent` line says; returns the answer to type.
    func act(_ equivalent: String, question: Bool) throws -> String {
        if skip.contains(where: { equivalent.contains($0) }) { return "" }
        // Several physical changes in one step: "plant.set A 1; plant.set B 1".
        let parts = equivalent.components(separatedBy: "; ")
        if parts.count > 1 {
            for part in parts { _ = try act(part, question: false) }
            return question ? "y" : ""
        }
        let w = equivalent.split(separator: " ").map(String.init)
        switch w.first {
        case "plant.set": try sim.set(w[1], Double(w[2])!)
        case "device.fault": try sim.fault(w[1], w[2])
        case "plant.advance": try sim.advance(Double(w[1])!)
        case "plant.reset": try sim.call("plant.reset")
        case "plant.get":
            // "plant.get NAME, expect MATCH": look at the plant and answer honestly.
            let name = w[1].trimmingCharacters(in: CharacterSet(charactersIn: ","))
            let v = try sim.plant()[name] ?? .nan
            let m = equivalent.components(separatedBy: "expect ").last ?? ""
            return Self.matches(v, m) ? "y" : "n"
        default: break
        }
        return question ? "y" : ""
    }

    static func matches(_ v: Double, _ m: String) -> Bool {
        let t = m.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix(">= ") { return v >= Double(t.dropFirst(3))! }
        if t.hasPrefix("<= ") { return v <= Double(t.dropFirst(3))! }
        if t.contains("..") {
            let p = t.components(separatedBy: "..")
            return v >= Double(p[0])! && v <= Double(p[1])!
        }
        return abs(v - (Double(t) ?? .nan)) < 1e-6
    }

    /// Runs `redline-hil ARGS` with stdin and stdout piped, answering prompts until it exits.
    func run(_ args: [String], timeout: Double = 180) throws -> Int32 {
        guard let exe = TestPaths.executable("redline-hil") else { throw TestSupportError("redline-hil is not built") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let toRunner = Pipe(), fromRunner = Pipe()
        p.standardInput = toRunner
        p.standardOutput = fromRunner
        p.standardError = FileHandle.standardError
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        var pending = ""
        var equivalent = ""
        var answered = 0
        let fd = fromRunner.fileHandleForReading.fileDescriptor
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 200) <= 0 { if !p.isRunning { break } else { continue } }
            var buf = [UInt8](repeating: 0, count: 8192)
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            let text = String(decoding: buf[..<n], as: UTF8.self)
            transcript += text
            pending += text
            while let nl = pending.firstIndex(of: "\n") {
                let line = String(pending[..<nl])
                pending = String(pending[pending.index(after: nl)...])
                if line.hasPrefix(">> STEP") { prompts.append(line) }
                if let r = line.range(of: "(simulator equivalent: ") {
                    equivalent = String(line[r.upperBound...].dropLast())
                }
                let question = line.contains("Answer y or n")
                if (question || line.contains("Press Enter when done.")) && answered < (answers ?? .max) {
                    let answer = try act(equivalent, question: question)
                    try toRunner.fileHandleForWriting.write(contentsOf: Array((answer + "\n").utf8))
                    answered += 1
                    if answered == answers { try toRunner.fileHandleForWriting.close() }
                }
            }
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return p.terminationStatus
    }
}

@Suite("HIL guided proof tests, answered by a scripted engineer", .serialized,
       .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct HILGuidedTests {
    @Test("the Server Room A scenario as a guided proof test produces a passing proof-test record")
    func guidedServerRoomA() throws {
        let s = try PlantAndDaemon(manualClock: true)  // its own plant: suites run in parallel
        defer { s.stop() }
        try Self.guidedServerRoomA(s)
    }

    /// Server Room A, guided, on `s` (a manual-clock plant of its own; also run on the BACnet
    /// site): a passing, time-stamped proof-test record, the plant read through the daemon only.
    static func guidedServerRoomA(_ s: PlantAndDaemon) throws {
        let dir = TempDir(prefix: "rlguided")
        let report = dir.file("proof-test.md")
        let engineer = ScriptedEngineer(sim: s.sim)
        let status = try engineer.run(["run", "--guided", scenarioPath("summitbridge-server-room-a.yaml"),
                                       "--site", s.siteFile, "--devices", s.root.appendingPathComponent("Devices").path,
                                       "--agent-socket", s.agentSocket, "--operator-socket", s.operatorSocket,
                                       "--audit", s.auditPath, "--report", report, "--engineer", "A. Tester"])
        #expect(status == 0, "\(engineer.transcript)")
        #expect(engineer.prompts.contains { $0.contains("Trigger the occupancy sensor in server-room-a") })
        #expect(engineer.prompts.count >= 10)
        let md = try String(contentsOfFile: report, encoding: .utf8)
        #expect(md.contains("# Proof-test record: summitbridge-dc2"))
        #expect(md.contains("**PASS**"))
        #expect(md.contains("A. Tester"))
        #expect(md.contains("confirmed sra-occupancy.occupied = 1 (good)"), "\(md)")
        #expect(md.contains("[RL-2]"))
        // Every step has a UTC time stamp.
        let rows = md.split(separator: "\n").filter { $0.hasPrefix("| ") && $0.contains("T") && $0.contains("Z |") }
        #expect(rows.count >= 38, "one time-stamped row per step (38), got \(rows.count)")
        // Guided mode never used the simulator's control socket for itself: it read the plant through the daemon.
        #expect(!engineer.transcript.contains("simulator control:"))
    }

    @Test("a physical step the engineer did not perform is recorded as not confirmed, and the proof test fails")
    func unconfirmedStepFails() throws {
        let s = try PlantAndDaemon(manualClock: true)  // its own plant: suites run in parallel
        defer { s.stop() }
        let dir = TempDir(prefix: "rlguided")
        let file = try dir.write("door.yaml", """
            scenario: guided-occupancy
            agent: facilities-agent
            steps:
              - plant: {server-room-a.occupied: 1}
              - write: sra-door.lock
                value: 1
                expect: {outcome: denied, rule: RL-3}
            """)
        let report = dir.file("proof-test.md")
        let engineer = ScriptedEngineer(sim: s.sim, skip: ["server-room-a.occupied"])
        let status = try engineer.run(["run", "--guided", file, "--site", s.siteFile,
                                       "--devices", s.root.appendingPathComponent("Devices").path,
                                       "--agent-socket", s.agentSocket, "--operator-socket", s.operatorSocket, "--report", report])
        #expect(status == 1, "\(engineer.transcript)")
        let md = try String(contentsOfFile: report, encoding: .utf8)
        #expect(md.contains("NOT CONFIRMED"))
        #expect(md.contains("**FAIL**"))
    }

    @Test("an engineer who stops answering ends the proof test: that step fails with no answer, the later steps are not run")
    func engineerWalksAway() throws {
        let s = try PlantAndDaemon(manualClock: true)  // its own plant: suites run in parallel
        defer { s.stop() }
        let dir = TempDir(prefix: "rlguided")
        let file = try dir.write("walk-away.yaml", """
            scenario: guided-walk-away
            agent: facilities-agent
            steps:
              - plant: {server-room-a.occupied: 1}
              - plant: {server-room-a.occupied: 0}
              - plant: {server-room-a.occupied: 1}
            """)
        // Answers the calm-start prompt and step 1, then closes its side.
        let engineer = ScriptedEngineer(sim: s.sim, answers: 2)
        let status = try engineer.run(["run", "--guided", file, "--site", s.siteFile,
                                       "--devices", s.root.appendingPathComponent("Devices").path,
                                       "--agent-socket", s.agentSocket, "--operator-socket", s.operatorSocket])
        #expect(status == 1, "\(engineer.transcript)")
        #expect(engineer.transcript.contains("no answer from the engineer (input closed)"), "\(engineer.transcript)")
        #expect(engineer.prompts.map { String($0.prefix(10)) } == [">> STEP 0:", ">> STEP 1:", ">> STEP 2:"], "\(engineer.transcript)")
        // The step lines ("  ok     1 title", "  FAIL   2 title: detail"): 1 and 2, nothing after.
        let stepLines = engineer.transcript.split(separator: "\n").compactMap { line -> Int? in
            guard line.hasPrefix("  ok  ") || line.hasPrefix("  FAIL ") || line.hasPrefix("  skip") else { return nil }
            return Int(line.dropFirst(6).prefix(4).trimmingCharacters(in: .whitespaces))
        }
        #expect(stepLines == [1, 2], "the run went on after the engineer left:\n\(engineer.transcript)")
    }
}
