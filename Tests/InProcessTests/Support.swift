import RedlineConfig
import RedlineCore
import RedlineDaemon
import RedlineTestSupport
import RedlineTesting

/// The demo site (`Firmware-Configs/demo-datacenter.yaml`), from the real loader.
func demoSite() throws -> Site {
    try SiteLoader.load(siteFile: TestPaths.packageRoot().appendingPathComponent("Firmware-Configs/demo-datacenter.yaml").path)
}

/// A fresh in-process daemon on the demo site, after its first full scan (ready), stopped after `body`.
func withDaemon<T>(limits: AgentLimits = AgentLimits(), ready: Bool = true,
                   _ body: (InProcessDaemon) async throws -> T) async throws -> T {
    let d = try await InProcessDaemon(site: try demoSite(), limits: limits)
    if ready { await d.scan() }
    do {
        let r = try await body(d)
        await d.stop()
        return r
    } catch {
        await d.stop()
        throw error
    }
}

extension InProcessDaemon {
    /// `points.write` as the facilities agent (granted every output): the answer's `result`, or the whole answer on an error.
    func write(_ id: String, _ value: Double, reason: String? = nil, as agent: String = "facilities-agent") async throws -> JSON {
        var p: [(String, JSON)] = [("id", .string(id)), ("value", .number(value))]
        if let reason { p.append(("reason", .string(reason))) }
        let r = try await self.agent(agent, "points.write", .object(p))
        return r["result"] ?? r
    }

    /// The audit records of one kind.
    func audited(_ kind: String) async throws -> [JSON] {
        try await auditRecords().filter { $0["kind"]?.stringValue == kind }
    }
}
