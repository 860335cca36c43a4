import Logging
import RedlineCore
import RedlineIO

/// The daemon without its sockets: the real `Engine` (arbiter, effects, ledger, liveness,
/// events) and the two sockets' services, over the plant it is given. `redlined` builds one
/// over a `BusPlant` and puts `LineServer`s in front of it; the in-process harness of
/// `RedlineTesting` builds one over a `MemoryPlant` and hands it request lines directly.
///
/// What the sockets add, and this does not have: `SO_PEERCRED` (the harness says which peer
/// is calling), connection limits, the rate limit, framing (`LineDecoder`) and event
/// subscriptions. The end-to-end suite proves those with real processes.
package final class DaemonCore: Sendable {
    let engine: Engine
    let agentService: AgentService
    let operatorService: OperatorService

    package enum Socket: Sendable { case agent, `operator` }

    package init(site: Site, plant: any PlantAccess, audit: AuditLog, logger: Logger, notifier: SystemdNotifier,
                 limits: AgentLimits = AgentLimits(), eventBuffer: Int = 1024, safety: (any TaskExecutor)? = nil,
                 lane: (any TaskExecutor)? = nil, clock: @escaping @Sendable () -> Int64 = monotonicMillis) {
        engine = Engine(site: site, plant: plant, audit: audit, logger: logger, notifier: notifier, limits: limits,
                        eventBuffer: eventBuffer, safety: safety, lane: lane, clock: clock)
        agentService = AgentService(engine: engine)
        operatorService = OperatorService(engine: engine)
    }

    /// Scans the plant until cancelled (effects, readiness, the watchdog and expiries follow each scan).
    package func runScans() async { await engine.runScans() }

    /// Ready for writes (after the first full scan).
    package var isReady: Bool { engine.isReady }

    /// Safe-state writes decided by the effects and not finished yet.
    package var effectWritesInFlight: Int { engine.effects.writesInFlight }

    /// One request line from `peer` on `socket`, answered as the socket would answer it: the
    /// peer's admission first (a refused peer gets the message the socket sends before it
    /// disconnects), then the line (nil for a notification or a blank line).
    package func answer(line: [UInt8], from peer: Peer, on socket: Socket) async -> JSON? {
        switch socket {
        case .agent: return await Self.answer(line: line, peer: peer, service: agentService)
        case .operator: return await Self.answer(line: line, peer: peer, service: operatorService)
        }
    }

    private static func answer<S: LineService>(line: [UInt8], peer: Peer, service: S) async -> JSON? {
        let session: S.Session
        switch service.admit(peer) {
        case .success(let s): session = s
        case .failure(let e): return RPC.error(id: .null, e)
        }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        return await service.answer(RPC.parse(line: line), session: session)
    }
}
