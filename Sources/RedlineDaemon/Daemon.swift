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
    public var agentSocket = SocketPaths.agentDefault
    public var operatorSocket = SocketPaths.operatorDefault
    public var auditPath = "/var/lib/redline/audit.jsonl"
    public var auditFsync = true
    public var auditMaxBytes = 64 * 1024 * 1024
    /// Rotated audit files kept (the log is bounded by (keep + 1) × auditMaxBytes).
    public var auditKeep = 8
    /// A signed checkpoint every this many records and seconds (whichever comes first).
    public var checkpointRecords = 1000
    public var checkpointSeconds = 60.0
    /// Start on a log shorter than the state directory's last checkpoint says (audited as a gap).
    public var acceptMissingAuditLog = false
    public var agentGroup: String?
    public var operatorGroup: String?
    public var limits = ConnectionLimits()
    public var agentLimits = AgentLimits()
    /// Events a subscriber may fall behind by before it is disconnected.
    public var eventBuffer = 1024
    /// node_exporter textfile to write the metrics to after scans (`--metrics-textfile`), and how often at most.
    public var metricsTextfile: String?
    public var metricsIntervalMs = 1000
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

        let audit = try openAudit(o, site: site, logger: logger)
        defer { audit.close() }
        if let note = audit.recoveryNote {
            logger.warning("audit log recovered", metadata: ["note": "\(note)"])
        }
        if let missing = audit.acceptedMissing {
            logger.critical("audit log: missing records accepted by --accept-missing-audit-log", metadata: ["what": "\(missing)"])
        }
        do {
            try await audit.append(kind: "start", [
                ("site", .string(site.name)), ("config", .string(o.configPath)), ("pid", .number(Double(getpid()))),
                ("recovery", audit.recoveryNote.map { .string($0) } ?? .null),
                ("acceptedMissingLog", audit.acceptedMissing.map { .string($0) } ?? .null),
                ("checkpointKey", audit.verifierKey.map { .string($0.text) } ?? .null),
                ("redLines", .array(RedLines.all.map { .string($0.id.rawValue) })),
            ])
        } catch {
            throw StartupError(message: "audit log: cannot write the start record: \(error)", exitCode: 74)
        }

        let plant = BusPlant(site: site, logger: logger)
        plant.start()
        defer { plant.shutdown() }
        let notifier = SystemdNotifier(environment: environment())
        // The safety path (scan loops, effects, watchdog), the arbiter's lane and the operator
        // socket each run on a thread of their own: agents' load on the cooperative pool delays none.
        let safety = DedicatedExecutor(name: "redline-safety")
        let laneThread = DedicatedExecutor(name: "redline-arbiter")
        let operatorThread = DedicatedExecutor(name: "redline-operator")
        let core = DaemonCore(site: site, plant: plant, audit: audit, logger: logger, notifier: notifier,
                              limits: o.agentLimits, eventBuffer: o.eventBuffer, safety: safety, lane: laneThread)
        // The metrics textfile, on a thread of its own (started with the services); stopped (a last file, not ready) before the plant and the log close.
        let metrics = o.metricsTextfile.map { MetricsTextfile(path: $0, intervalMs: o.metricsIntervalMs, engine: core.engine, logger: logger) }

        // One event loop per socket: agents' bytes never queue in front of an operator's.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let operatorLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let agentGid = try o.agentGroup.map { g throws(StartupError) in try gid(of: g) }
        let operatorGid = try o.operatorGroup.map { g throws(StartupError) in try gid(of: g) }
        let agentServer = LineServer(name: "agent", path: o.agentSocket, mode: agentGid == nil ? 0o666 : 0o660, group: agentGid,
                                     limits: o.limits, service: core.agentService, eventLoops: loops, logger: logger)
        let operatorServer = LineServer(name: "operator", path: o.operatorSocket, mode: operatorGid == nil ? 0o666 : 0o660,
                                        group: operatorGid, limits: o.limits, service: core.operatorService,
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
        metrics?.start()
        let services: [any Service] = [
            Task0(name: "scanner") {
                await withTaskExecutorPreference(safety) {
                    await core.runScans()
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
            await metrics?.stop()
            throw StartupError(message: "\(error)", exitCode: 70)
        }
        // The last metrics file (not ready), while the plant and the audit log are still open.
        await metrics?.stop()
        hup.cancel()
        try? await loops.shutdownGracefully()
        try? await operatorLoops.shutdownGracefully()
        unlink(o.agentSocket)
        unlink(o.operatorSocket)
        _ = try? await audit.append(kind: "stop", [("site", .string(site.name))])
        logger.info("redlined stopped")
    }

    /// Opens the audit log with its signing key (created on first start) and checkpoints to the log.
    static func openAudit(_ o: DaemonOptions, site: Site, logger: Logger) throws(StartupError) -> AuditLog {
        let stateDir = AuditLog.dirname(o.auditPath)
        let key = try AuditKeyFile.loadOrCreate(stateDir: stateDir)
        let origin = "redline/\(site.name)"
        try AuditKeyFile.publish(AuditKeys.VerifierKey(origin: origin, key: key.publicKey), stateDir: stateDir)
        let cp = AuditLog.Checkpointing(origin: origin, key: key, everyRecords: o.checkpointRecords, everySeconds: o.checkpointSeconds) { c in
            logger.notice("audit checkpoint", metadata: ["seq": "\(c.seq)", "checkpoint": "\(c.text)"])
        }
        let opts = AuditLog.Options(path: o.auditPath, fsync: o.auditFsync, maxBytes: o.auditMaxBytes, keep: o.auditKeep,
                                    checkpoints: cp, acceptMissing: o.acceptMissingAuditLog) { w in
            logger.warning("audit log", metadata: ["warning": "\(w)"])
        }
        do { return try AuditLog(options: opts) } catch {
            throw StartupError(message: "audit log: \(error)", exitCode: 74)
        }
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
