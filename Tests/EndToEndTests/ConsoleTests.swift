import Foundation
import RedlineCore
import RedlineTestSupport
import Testing

/// `redline-console` driven by a real browser: headless Chromium (Debian `chromium` and
/// `chromium-driver`) through Selenium (PyPI `selenium`), from Tests/console/console_browser_driver.py.
///
/// Each test owns its plant and daemon (not the shared stack), so red-team cases elsewhere
/// cannot quarantine the agent or fault the door under it. The agent's writes reach the daemon
/// as its uid (setpriv); the plant is read on the simulator's control socket; the audit log
/// from its file.
@Suite("Operator console in a real browser", .serialized, .enabled(if: uidAvailable, "needs root to run as the agents' uids"))
struct ConsoleTests {
    static let facilities: UInt32 = 2001

    func consoleExecutable() throws -> String {
        try #require(TestPaths.executable("redline-console"), "redline-console is not built (run `swift build` first)")
    }

    @Test("Chromium: held request appears live; Approve locks the door; Deny with a reason is audited; no token 401; cross-origin POST 403; Release; live again after a daemon restart")
    func browserSession() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let console = try ChildProcess(executable: try consoleExecutable(), arguments: ["--operator-socket", s.operatorSocket],
                                       logPath: s.dir.file("console.log"))
        defer { console.stop() }
        #expect(console.waitForOutput(containing: "?token=", timeout: 20), "no URL printed: \(console.stdout)\n\(console.stderr)")
        let url = try #require(console.stdout.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("http://127.0.0.1:") && $0.contains("?token=") })
        let token = try #require(url.split(separator: "=").last)
        #expect(token.count == 64, "a 256-bit token in hex: \(url)")
        #expect(try s.sim.plant()["sra-door.lock"] == 0)

        let driver = s.root.appendingPathComponent("Tests/console/console_browser_driver.py").path
        var args = ["--url", String(url), "--sim-control", s.sim.controlPath, "--agent-socket", s.agentSocket,
                    "--agent-uid", String(Self.facilities), "--audit", s.auditPath, "--operator-socket", s.operatorSocket]
        if let shot = ProcessInfo.processInfo.environment["REDLINE_CONSOLE_SCREENSHOT"], !shot.isEmpty {
            args += ["--screenshot", shot]
        }
        let started = Date()
        let run = try runDriver(driver: driver, arguments: args, stderrLog: s.dir.file("console-driver.err"), timeout: 150)
        let out = run.stdout
        print("console_browser_driver.py (\(String(format: "%.1f", Date().timeIntervalSince(started))) s):\n" + out)
        #expect(run.status == 0, "driver exited \(run.status)\nstdout:\n\(out)\nstderr:\n\(run.stderr)\nconsole:\n\(console.stderr)")
        for check in [
            "PASS GET / without the token is refused (401)",
            "PASS GET /events without the token is refused (401)",
            "PASS POST /approve without the token is refused (401)",
            "PASS control: POST /approve with the token from our own origin reaches the daemon",
            "PASS cross-origin POST /approve with the valid token (cookie) is refused (403)",
            "PASS cross-origin POST /deny with the valid token (query) is refused (403)",
            "PASS POST /release with the token but neither Origin nor Referer is refused (403)",
            "PASS live updates connect (server-sent events)",
            "PASS the held request appears in the page without a reload",
            "PASS the agent's reason is shown as its untrusted words, as text (no markup)",
            "PASS the card says what the policy would decide now",
            "PASS after Approve in the page the plant shows sra-door.lock = 1 (locked)",
            "PASS the audit log shows the deny with the operator's reason",
            "PASS the denied lock was not written: the door stays unlocked",
            "PASS the audit section lists the approvals and the chain verifies",
            "PASS the quarantined agent appears with a Release button without a reload",
            "PASS Release in the page ends the quarantine (agents.list)",
            "PASS the daemon has one event subscriber, the console (not one per browser)",
            "PASS no reload happened during the session",
        ] {
            #expect(out.contains(check), "missing `\(check)` in driver output:\n\(out)")
        }
        #expect(!out.contains("FAIL "), "driver reported failures:\n\(out)")
        #expect(out.contains("SUMMARY"), "no summary line:\n\(out)")

        // What the daemon recorded, read here independently of the driver: one approve and one
        // deny with its reason, both by uid 0 (the console's own account, not the agent).
        let approvals = try s.auditRecords().filter { $0["kind"]?.stringValue == "approval" }
        #expect(approvals.contains { $0["action"]?.stringValue == "approve" && $0["by"]?.numberValue == 0 })
        #expect(approvals.contains {
            $0["action"]?.stringValue == "deny" && $0["reason"]?.stringValue == "not during the change window (ticket 4711)" && $0["by"]?.numberValue == 0
        })
        #expect(try s.operatorCall("approvals.list")["approvals"]?.arrayValue?.isEmpty == true)
        #expect(try s.auditRecords().contains { $0["kind"]?.stringValue == "release" && $0["agent"]?.stringValue == "facilities-agent" && $0["by"]?.numberValue == 0 })
        #expect(console.isRunning, "the console must still serve: \(console.stderr)")

        // The daemon restarts under the console: its one subscription reconnects by itself.
        try s.killAndRestartDaemon()
        let again = try runDriver(driver: driver, arguments: args + ["--phase", "after-restart"],
                                  stderrLog: s.dir.file("console-driver-2.err"), timeout: 90)
        print("console_browser_driver.py --phase after-restart:\n" + again.stdout)
        #expect(again.status == 0, "driver exited \(again.status)\nstdout:\n\(again.stdout)\nstderr:\n\(again.stderr)")
        #expect(again.stdout.contains("PASS after the restart a held request appears without a reload"), "\(again.stdout)")
        #expect(!again.stdout.contains("FAIL "), "\(again.stdout)")
    }

    @Test("redline-console refuses to start as an agent's uid: a clear error, exit 3, nothing listening")
    func refusesAgentUid() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid", String(Self.facilities), "--regid", String(Self.facilities), "--clear-groups",
                       try consoleExecutable(), "--operator-socket", s.operatorSocket]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 3, "exit \(p.terminationStatus)\nstdout: \(stdout)\nstderr: \(stderr)")
        #expect(stderr.contains("refused uid 2001"), "\(stderr)")
        #expect(stderr.contains("agent facilities-agent"), "the daemon's reason is shown: \(stderr)")
        #expect(stderr.contains("never as an agent's"), "\(stderr)")
        #expect(!stdout.contains("token="), "no URL may be printed: \(stdout)")
    }

    @Test("redline-console --help teaches: identity, token, origin check, ssh -L")
    func helpTeaches() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try consoleExecutable())
        p.arguments = ["--help"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for needle in ["--operator-socket", "--port", "127.0.0.1", "token", "origin", "ssh -L", "agent"] {
            #expect(text.contains(needle), "`\(needle)` missing from --help:\n\(text)")
        }
    }
}

/// What the console reads that the daemon added for it (issue 16): `approvals.list`'s
/// `agentText` and `ifApprovedNow`, and `audit.recent`, on the operator socket of a live daemon.
@Suite("Operator socket: held requests' context and audit.recent", .serialized, .enabled(if: uidAvailable, "needs root to connect as the agents' uids"))
struct ConsoleDaemonMethodsTests {
    @Test("approvals.list: the agent's words as audited, and what an approval now would meet (allowed, then RL-3 once someone walks in)")
    func heldRequestContext() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        let rid = try #require(try c.request("points.write", .obj([("id", "sra-door.lock"), ("value", 1), ("reason", "<i>urgent</i>"),
                                                                   ("override", "OPERATOR-APPROVED")]))["result"]?["requestId"]?.stringValue)
        func held() throws -> JSON? {
            try s.operatorCall("approvals.list")["approvals"]?.arrayValue?.first { $0["requestId"]?.stringValue == rid }
        }
        let before = try #require(try held())
        #expect(before["agentText"]?["reason"]?.stringValue == "<i>urgent</i>")
        #expect(before["agentText"]?["otherText"]?["override"]?.stringValue == "OPERATOR-APPROVED")
        #expect(before["ifApprovedNow"]?["outcome"]?.stringValue == "allowed")
        try s.sim.set("server-room-a.occupied", 1)
        try s.waitScans(2)
        let after = try #require(try held())
        #expect(after["ifApprovedNow"]?["outcome"]?.stringValue == "denied")
        #expect(after["ifApprovedNow"]?["rule"]?.stringValue == "RL-3")
        // Asking changed nothing: still held, door still open.
        #expect(try s.sim.plant()["sra-door.lock"] == 0)
    }

    @Test("audit.recent: the last durable records in order, the file verifies; bad limits are refused; a broken file is reported")
    func auditRecent() throws {
        let s = try PlantAndDaemon()
        defer { s.stop() }
        let c = try s.agent(uid: 2001)
        defer { c.close() }
        let rid = try #require(try c.write("office-lights.on", 1)["requestId"]?.stringValue)
        // The write's `result` record is submitted after the answer: wait until it is on disk.
        let deadline = Date().addingTimeInterval(10)
        func resultSeq() throws -> Double? {
            try s.auditRecords().first { $0["kind"]?.stringValue == "result" && $0["requestId"]?.stringValue == rid }?["seq"]?.numberValue
        }
        while try resultSeq() == nil, Date() < deadline { usleep(20_000) }
        let newest = try #require(try resultSeq())
        // On disk is not yet durable (the writer's fdatasync may still run): poll until it is.
        var r = try s.operatorCall("audit.recent", .obj([("limit", 3)]))
        while (r["records"]?.arrayValue?.last?["seq"]?.numberValue ?? 0) < newest, Date() < deadline {
            usleep(20_000)
            r = try s.operatorCall("audit.recent", .obj([("limit", 3)]))
        }
        let recs = try #require(r["records"]?.arrayValue)
        #expect(recs.count == 3)
        let file = try s.auditRecords()
        let seqs = recs.compactMap { $0["seq"]?.numberValue }
        #expect(seqs.count == 3 && seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1, "consecutive, oldest first: \(seqs)")
        #expect((seqs.last ?? 0) >= newest, "the newest records: \(seqs), the write's result is #\(newest)")
        for rec in recs {
            #expect(file.first { $0["seq"] == rec["seq"] }?["hash"] == rec["hash"], "as on disk: \(rec.encoded())")
        }
        #expect(r["verified"]?.boolValue == true, "\(r)")
        #expect(r["verdict"]?.stringValue?.hasPrefix("ok ") == true, "\(r)")
        for bad: JSON in [0, 201, 1.5, "ten"] {
            #expect(throws: (any Error).self) { try s.operatorCall("audit.recent", .obj([("limit", bad)])) }
        }
        #expect(throws: (any Error).self) { try s.operatorCall("audit.recent", .obj([("other", 1)])) }
        // Someone edits the file behind the daemon's back: the console's badge must say so.
        let h = try #require(FileHandle(forWritingAtPath: s.auditPath))
        h.seekToEndOfFile()
        h.write(Data("{\"seq\":999,\"kind\":\"forged\"}\n".utf8))
        try h.close()
        let broken = try s.operatorCall("audit.recent")
        #expect(broken["verified"]?.boolValue == false, "\(broken)")
        #expect(broken["verdict"]?.stringValue?.contains("broken") == true, "\(broken)")
    }
}
