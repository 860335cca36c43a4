#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import NIOPosix
import RedlineConfig
import RedlineCore
import RedlineIO
import ServiceLifecycle

/// How `redlined` is started (all from flags; nothing from the agent channel).
public struct DaemonOptions: Sendable {
    public var configPath: String
    public var devicesDir: String?
    /// Local profiles that replace packaged ones of the same name (`--local-devices`).
    public var localDevicesDir: String?
    public var agentSocket = "/run/redline/agent.sock"
    public var operatorSocket = "/run/redline/operator.sock"
    public var auditPath = "/var/lib/redline/audit.jsonl"
    public var auditFsync = true
    public var auditMaxBytes = 64 * 1024 * 1024
    public var agentGroup: String?
    public var operatorGroup: String?
    public var limits = ConnectionLimits()
    public var agentLimits = AgentLimits()
    public init(configPath: String) { self.configPath = configPath }
}

/// A start-up failure, with the exit code `redlined` uses (sysexits.h).
public struct StartupError: Error, CustomStringConvertible {
    public var message: String
    public var exitCode: Int32
    public var description: String { message }
}

public enum RedlineDaemon {
    /// Refuses a file anyone but its owner (root or the daemon's user) can write, as sshd does
    /// (exit 66 if it does not exist). Every file and folder of a loaded site: `checkConfigFiles`.
    public static func checkPermissions(_ path: String) throws(StartupError) {
        guard access(path, F_OK) == 0 else {
            throw StartupError(message: "\(path): \(String(cString: strerror(errno)))", exitCode: 66)
        }
        let problems = ConfigFileCheck.problems(files: [path], folders: [])
        if !problems.isEmpty { throw StartupError(message: problems.map(\.message).joined(separator: "\n"), exitCode: 78) }
    }

    /// Loads and checks everything, then serves until SIGTERM or SIGINT.
    public static func run(_ o: DaemonOptions, logger: Logger) async throws {
        try checkPermissions(o.configPath)
        let loaded: LoadedSite
        do {
            loaded = try SiteLoader.loadWithFiles(siteFile: o.configPath, devicesDir: o.devicesDir,
                                               localDevicesDir: o.localDevicesDir)
        } catch {
            throw StartupError(message: "invalid site configuration:\n" + error.diagnostics.map(\.description).joined(separator: "\n"), exitCode: 78)
        }
        let site = loaded.site
        try checkConfigFiles(loaded)
        try checkOperatorSeparation(site)
        try checkGPIOLines(site)

        let audit: AuditLog
        do {
            audit = try AuditLog(options: .init(path: o.auditPath, fsync: o.auditFsync, maxBytes: o.auditMaxBytes))
        } catch {
            throw StartupError(message: "audit log: \(error)", exitCode: 74)
        }
        defer { audit.close() }
        if let note = audit.recoveryNote {
            logger.warning("audit log recovered", metadata: ["note": "\(note)"])
        }
        try await audit.append(kind: "start", [
            ("site", .string(site.name)), ("config", .string(o.configPath)), ("pid", .number(Double(getpid()))),
            ("recovery", audit.recoveryNote.map { .string($0) } ?? .null),
            ("redLines", .array(RedLines.all.map { .string($0.id.rawValue) })),
        ])

        let io = PlantIO(site: site, logger: logger)
        io.start()
        defer { io.shutdown() }
        let scanner = Scanner(site: site, io: io, logger: logger)
        let notifier = SystemdNotifier(environment: environment())
        // The safety path (scan loops, effects, watchdog), the arbiter's lane and the operator
        // socket each run on a thread of their own: agents' load on the cooperative pool delays none.
        let safety = DedicatedExecutor(name: "redline-safety")
        let laneThread = DedicatedExecutor(name: "redline-arbiter")
        let operatorThread = DedicatedExecutor(name: "redline-operator")
        let engine = Engine(site: site, io: io, scanner: scanner, audit: audit, logger: logger, notifier: notifier,
                            limits: o.agentLimits, safety: safety, lane: laneThread)

        // One event loop per socket: agents' bytes never queue in front of an operator's.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let operatorLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let agentGid = try o.agentGroup.map { g throws(StartupError) in try gid(of: g) }
        let operatorGid = try o.operatorGroup.map { g throws(StartupError) in try gid(of: g) }
        let agentServer = LineServer(name: "agent", path: o.agentSocket, mode: agentGid == nil ? 0o666 : 0o660, group: agentGid,
                                     limits: o.limits, service: AgentService(engine: engine), eventLoops: loops, logger: logger)
        let operatorServer = LineServer(name: "operator", path: o.operatorSocket, mode: operatorGid == nil ? 0o666 : 0o660,
                                        group: operatorGid, limits: o.limits, service: OperatorService(engine: engine),
                                        eventLoops: operatorLoops, logger: logger)

        // Red lines never reload, and configuration changes need a restart: SIGHUP is refused.
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hup.setEventHandler {
            logger.warning("SIGHUP ignored: red lines are compiled in and the configuration is read once; restart redlined to change it")
        }
        hup.resume()

        logger.info("redlined starting", metadata: ["site": "\(site.name)", "points": "\(site.points.count)",
                                                    "agents": "\(site.agents.count)", "audit": "\(o.auditPath)"])
        let services: [any Service] = [
            Task0(name: "scanner") {
                await withTaskExecutorPreference(safety) {
                    await scanner.run(onPart: { engine.onPart($0) }, onScan: { engine.onScan($0) })
                }
            },
            Task0(name: "agent socket") { try await agentServer.run() },
            Task0(name: "operator socket") {
                try await withTaskExecutorPreference(operatorThread) { try await operatorServer.run() }
            },
        ]
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("service failed", metadata: ["error": "\(error)"])
            throw StartupError(message: "\(error)", exitCode: 70)
        }
        hup.cancel()
        try? await loops.shutdownGracefully()
        try? await operatorLoops.shutdownGracefully()
        unlink(o.agentSocket)
        unlink(o.operatorSocket)
        _ = try? await audit.append(kind: "stop", [("site", .string(site.name))])
        logger.info("redlined stopped")
    }

    static func gid(of group: String) throws(StartupError) -> gid_t {
        if let n = gid_t(group) { return n }
        guard let g = getgrnam(group) else { throw StartupError(message: "no group \"\(group)\"", exitCode: 67) }
        return g.pointee.gr_gid
    }

    static func environment() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let e = p.pointee {
            let s = String(cString: e)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}

/// A long-running task as a lifecycle service, cancelled on graceful shutdown.
struct Task0: Service {
    let name: String
    let body: @Sendable () async throws -> Void
    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await body() }
        } catch {
            // Ending because we were asked to stop is not a failure.
            if Task.isCancelled || Task.isShuttingDownGracefully || error is CancellationError { return }
            throw error
        }
    }
}
