import RedlineCore
import RedlineIO

/// The answer to one write request.
struct WriteAnswer: Sendable {
    var requestId: String
    var outcome: Outcome
    var rule: Rule?
    var explanation: String

    var json: JSON {
        .obj([("requestId", .string(requestId)), ("outcome", .string(outcome.rawValue)),
              ("rule", rule.map { .string($0.rawValue) }), ("explanation", .string(explanation))])
    }
}

/// The JSON shapes of the daemon's answers (docs/DESIGN.md §7, §8), in one place.
enum Wire {
    static func describe(site: Site, agent: Agent) -> JSON {
        let points: [JSON] = site.points.filter { agent.canSee($0.id) }.map { p in
            let writable = agent.canWrite(p.id) && p.role.isOutput
            let range = p.writeRange
            // A BACnet output's command can be released (`points.release`) as well as written.
            var releasable = false
            if writable, site.bacnet != nil, case .bacnet = p.binding { releasable = true }
            return .obj([
                ("id", .string(p.id)), ("role", .string(p.role.rawValue)), ("zone", .string(p.zone)),
                ("access", .string(writable ? "read-write" : "read")),
                ("unit", p.unit.map { .string($0) }),
                ("min", writable && !p.role.isBoolean ? .number(range.lowerBound) : nil),
                ("max", writable && !p.role.isBoolean ? .number(range.upperBound) : nil),
                ("releasable", releasable ? .bool(true) : nil),
            ])
        }
        let lines: [JSON] = RedLines.all.map { .obj([("id", .string($0.id.rawValue)), ("title", .string($0.title))]) }
        return .obj([("site", .string(site.name)), ("agent", .string(agent.name)), ("points", .array(points)), ("redLines", .array(lines))])
    }

    static func values(site: Site, ids: [String], snapshot snap: PlantSnapshot, now: Int64) -> JSON {
        let values: [JSON] = ids.compactMap { id in
            guard let p = site.point(id) else { return nil }
            let q = snap.quality(of: p, now: now, staleAfterMs: site.timing.staleAfterMs)
            let r = snap[id]
            let quality: String = q == .good ? "good" : (q == .stale ? "stale" : "fault")
            return .obj([("id", .string(id)), ("value", r?.value.map { .number($0) } ?? .null),
                         ("quality", .string(quality)), ("ageMs", snap.ageMs(of: id, now: now).map { .number(Double($0)) } ?? .null)])
        }
        return .obj([("values", .array(values))])
    }

    /// Held requests; with `ifApprovedNow`, what the policy would decide for each if an operator
    /// approved it now, on the newest readings (the approval itself decides again on a fresh re-read).
    /// `agentText` is what the agent sent beside id and value (its reason): untrusted free text, as audited.
    static func approvals(_ list: [HeldRequest], now: Int64, agentText: ((HeldRequest) -> JSON?)? = nil,
                          ifApprovedNow: ((HeldRequest) -> Decision)? = nil) -> JSON {
        .obj([("approvals", .array(list.map { r in
            .obj([("requestId", .string(r.id)), ("agent", .string(r.agent)), ("point", .string(r.point)),
                  ("value", .number(r.value)), ("release", r.release ? .bool(true) : nil), ("explanation", .string(r.explanation)),
                  ("expiresInS", .number(Double(max(0, r.expiresAt - now) / 1000))),
                  ("agentText", agentText.flatMap { $0(r) }),
                  ("ifApprovedNow", ifApprovedNow.map { decision($0(r)) })])
        }))])
    }

    /// A policy decision as `{outcome, rule, explanation}`.
    static func decision(_ d: Decision) -> JSON {
        switch d {
        case .allowed: return .obj([("outcome", "allowed"), ("rule", nil), ("explanation", "would be written")])
        case .denied(let rule, let why): return .obj([("outcome", "denied"), ("rule", .string(rule.rawValue)), ("explanation", .string(why))])
        case .held(_, let why): return .obj([("outcome", "held"), ("rule", nil), ("explanation", .string(why))])
        case .unknownPoint: return .obj([("outcome", "denied"), ("rule", nil), ("explanation", "unknown point")])
        }
    }

    static func agents(site: Site, quarantine: QuarantineBook, now: Int64) -> JSON {
        .obj([("agents", .array(site.agents.map { a in
            .obj([("name", .string(a.name)), ("uid", .number(Double(a.uid))),
                  ("quarantined", .bool(quarantine.isQuarantined(a.name))),
                  ("recentDenials", .number(Double(quarantine.recentDenials(a.name, at: now))))])
        }))])
    }

    static func status(site: Site, ledger s: Ledger.State, snapshot snap: PlantSnapshot, effects: EffectState,
                       deviceJobs: [BusPriority: Int], auditSeq: UInt64, audit: JSON,
                       scanSeconds: [String: Double] = [:], devicesFaulted: [String: String] = [:],
                       now: Int64) -> JSON {
        let zones: [JSON] = site.zones.map { z in
            let c = ZoneCondition.evaluate(zone: z.id, site: site, snapshot: snap, now: now)
            return .obj([("id", .string(z.id)), ("occupied", .bool(c.occupied)), ("inAlarm", .bool(c.inAlarm)),
                         ("hazard", .bool(c.hazard)), ("causes", .array(c.causes.map { .string($0) }))])
        }
        var faulted = 0
        for p in site.points where snap.quality(of: p, now: now, staleAfterMs: site.timing.staleAfterMs) != .good { faulted += 1 }
        let c = s.counters
        let ages = s.actuationAges.sorted()
        func pct(_ q: Double) -> JSON { ages.isEmpty ? .null : .number(Double(ages[min(ages.count - 1, Int(Double(ages.count) * q))])) }
        let driven: [JSON] = effects.driven.values.sorted { $0.point < $1.point }.map { d -> JSON in
            .obj([("point", .string(d.point)), ("value", .number(d.value)), ("effect", .string(d.effect.rawValue))])
        }
        let denied: [(String, JSON)] = c.denied.sorted { $0.key < $1.key }.map { ($0.key, JSON.number(Double($0.value))) }
        let counters: JSON = .obj([
            ("writes", .number(Double(c.writes))), ("executed", .number(Double(c.executed))),
            ("held", .number(Double(c.held))), ("failed", .number(Double(c.failed))),
            ("denied", .object(denied)),
            ("withheld", .number(Double(c.withheld))), ("busy", .number(Double(c.busy))),
            ("valuesRead", .number(Double(c.reads))), ("badLines", .number(Double(c.badLines))),
            ("effectWrites", .number(Double(c.effectWrites))),
            ("expired", .number(Double(c.expired))),
            ("metricsWrites", .number(Double(c.metricsWrites))), ("metricsWriteFailures", .number(Double(c.metricsWriteFailures))),
        ])
        // What the metrics are rendered from (docs/DESIGN.md §8): each a list with one entry per
        // series, so a series reads 0 rather than vanishing.
        let decisions: [JSON] = c.decisions.sorted { $0.key < $1.key }.map { k, n in
            .obj([("outcome", .string(k.outcome)), ("rule", .string(k.rule)), ("agent", .string(k.agent)), ("count", .number(Double(n)))])
        }
        let buses: [JSON] = site.buses.map { b in
            .obj([("id", .string(b.id)), ("lastScanS", scanSeconds[b.id].map { .number($0) } ?? .null)])
        }
        // A device is up once a full scan has seen it and while none of its points is anything but good
        // (DeviceHealth); before the first full scan nothing is known, so nothing is up.
        let devices: [JSON] = site.devices.map { d in
            .obj([("id", .string(d.id)), ("zone", .string(d.zone)), ("up", .bool(c.scans > 0 && devicesFaulted[d.id] == nil))])
        }
        let agents: [JSON] = site.agents.map { a in
            .obj([("name", .string(a.name)), ("quarantined", .bool(s.quarantine.isQuarantined(a.name)))])
        }
        // E-2 is an instant, never held: the held effects are E-1, E-3 and E-4, in every zone.
        let effectList: [JSON] = Effect.allCases.filter { $0 != .e2 }.flatMap { e in
            site.zones.map { z in
                JSON.obj([("effect", .string(e.rawValue)), ("zone", .string(z.id)), ("active", .bool(effects.active.contains(EffectKey(e, z.id))))])
            }
        }
        let jobs: JSON = .obj([("safety", .number(Double(deviceJobs[.safety] ?? 0))), ("scan", .number(Double(deviceJobs[.scan] ?? 0))),
                               ("agent", .number(Double(deviceJobs[.agent] ?? 0)))])
        let ageStats: JSON = .obj([("p50", pct(0.5)), ("p99", pct(0.99)), ("samples", .number(Double(ages.count)))])
        let lastScan: JSON = s.lastScanAt.map { JSON.number(Double(now - $0)) } ?? .null
        let quarantined: [JSON] = s.quarantine.names.sorted().map { JSON.string($0) }
        let active: [JSON] = effects.active.sorted().map { JSON.string($0.description) }
        var out: [(String, JSON)] = [("site", .string(site.name)), ("ready", .bool(s.ready)), ("version", .string(BuildInfo.version))]
        out.append(("uptimeS", .number(Double((now - s.startedAt) / 1000))))
        out.append(("scans", .number(Double(c.scans))))
        out.append(("lastScanAgeMs", lastScan))
        out.append(("points", .number(Double(site.points.count))))
        out.append(("pointsNotGood", .number(Double(faulted))))
        out.append(("zones", .array(zones)))
        out.append(("quarantined", .array(quarantined)))
        out.append(("pendingApprovals", .number(Double(s.approvals.pending.count))))
        out.append(("effectsActive", .array(active)))
        out.append(("driven", .array(driven)))
        out.append(("counters", counters))
        out.append(("actuationReadingsAgeMs", ageStats))
        out.append(("requestHistory", .number(Double(s.approvals.historyCount))))
        out.append(("deviceJobs", jobs))
        out.append(("metricsTextfile", s.metricsLastWrite.map { w in
            .obj([("lastWriteS", .number(w.seconds)), ("bytes", .number(Double(w.bytes)))])
        } ?? .null))
        out.append(("decisions", .array(decisions)))
        out.append(("buses", .array(buses)))
        out.append(("devices", .array(devices)))
        out.append(("agents", .array(agents)))
        out.append(("effects", .array(effectList)))
        out.append(("auditSeq", .number(Double(auditSeq))))
        out.append(("audit", audit))
        return .object(out)
    }
}
