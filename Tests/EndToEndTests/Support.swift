import Foundation
import RedlineConfig
import RedlineClient
import RedlineCore
import RedlineTestSupport
import RedlineSync
import Testing
import Yams

/// One simulator + daemon shared by a serialized suite, stopped at process exit.
enum SharedStack {
    private static let stack = Lock<PlantAndDaemon?>(nil)

    static func get() throws -> PlantAndDaemon {
        try stack.withLock { s in
            if let s, s.daemon.isRunning, s.sim.child.isRunning { return s }
            let fresh = try PlantAndDaemon()
            s = fresh
            atexit { SharedStack.stopAll() }
            return fresh
        }
    }

    static func stopAll() {
        stack.withLock { $0?.stop() }
    }
}

/// Puts the plant and the agents back to the start: a fresh plant, no faults, no quarantine, nothing held.
func resetPlant(_ s: PlantAndDaemon) throws {
    for d in ["fire-panel", "dispatch", "sra-env", "sra-occupancy", "sra-door", "crac-1", "crac-2", "crac-3", "crac-4",
              "sra-exhaust", "sra-suppression", "sra-annunciator", "office-lights", "office-ahu"] {
        try s.sim.fault(d, "none")
    }
    try s.sim.call("plant.reset")
    for a in ["facilities-agent", "reporting-agent"] {
        try s.operatorCall("agents.release", ["agent": .string(a)])
    }
    // Red-line denials of earlier cases add up across agents (§6.2): start each case outside agents-held.
    try s.operatorCall("escalation.clear")
    for a in try s.operatorCall("approvals.list")["approvals"]?.arrayValue ?? [] {
        if let id = a["requestId"]?.stringValue { _ = try? s.operatorCall("approvals.deny", ["requestId": .string(id)]) }
    }
    try s.waitScans(2)
    // The previous case's effects may have re-asserted their outputs once more on readings taken
    // before the reset (E-3's strobe, say), and effects never switch an output back when they end.
    // Now that they have seen the calm plant and ended, reset again so every output starts calm.
    try s.sim.call("plant.reset")
    try s.waitScans(2)
}

/// Agent uids of the demo site, from the real loader.
func demoSite() throws -> Site {
    let root = TestPaths.packageRoot()
    return try SiteLoader.load(siteFile: root.appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path)
}

var uidAvailable: Bool { UidRelay.canSwitchUser }
