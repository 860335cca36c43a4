/// Runtime monitoring (docs/DESIGN.md §6.1, §6.2) as a value driven by an explicit clock.
///
/// An agent with `policy.threshold` red-line denials within `policy.windowMs`
/// is quarantined until an operator releases it. When `policy.escalationAgents` agents are
/// quarantined within the window, or `policy.escalationDenials` red-line denials across all
/// agents fall within it, the site enters `agents-held` until an operator clears it.
public struct QuarantineBook: Sendable, Hashable {
    public let policy: QuarantinePolicy
    private var denials: [String: [Int64]] = [:]
    /// Quarantined agents and when quarantine began.
    public private(set) var quarantined: [String: Int64] = [:]
    /// Every red-line denial, all agents (within the window), and every quarantine's start.
    private var allDenials: [Int64] = []
    private var quarantineStarts: [Int64] = []

    /// The site-wide escalation: since when, and why (nil while the site is not in it).
    public struct Escalation: Sendable, Hashable {
        public var since: Int64
        public var why: String
    }
    public private(set) var escalation: Escalation?
    public var agentsHeld: Bool { escalation != nil }

    public init(policy: QuarantinePolicy) { self.policy = policy }

    public func isQuarantined(_ agent: String) -> Bool { quarantined[agent] != nil }
    public var names: Set<String> { Set(quarantined.keys) }

    /// Records a denial. Returns true when this denial puts the agent into quarantine.
    @discardableResult
    public mutating func record(agent: String, rule: Rule, at now: Int64) -> Bool {
        guard rule.isRedLine, quarantined[agent] == nil else { return false }
        var list = denials[agent, default: []].filter { now - $0 < policy.windowMs && $0 <= now }
        list.append(now)
        denials[agent] = list
        allDenials = allDenials.filter { now - $0 < policy.windowMs && $0 <= now } + [now]
        var entered = false
        if list.count >= policy.threshold {
            quarantined[agent] = now
            denials[agent] = []
            quarantineStarts = quarantineStarts.filter { now - $0 < policy.windowMs && $0 <= now } + [now]
            entered = true
        }
        if escalation == nil {
            if quarantineStarts.count >= policy.escalationAgents {
                escalation = Escalation(since: now, why: "\(quarantineStarts.count) agents quarantined within \(policy.windowMs / 1000) s (site-wide limit \(policy.escalationAgents))")
            } else if allDenials.count >= policy.escalationDenials {
                escalation = Escalation(since: now, why: "\(allDenials.count) red-line denials across all agents within \(policy.windowMs / 1000) s (site-wide limit \(policy.escalationDenials))")
            }
        }
        return entered
    }

    /// An operator's clear of `agents-held`. Returns false if the site was not in it. The
    /// counts start again, so the same evidence does not escalate the site again at once.
    @discardableResult
    public mutating func clearEscalation() -> Bool {
        guard escalation != nil else { return false }
        escalation = nil
        allDenials = []
        quarantineStarts = []
        return true
    }

    /// Recent red-line denials counted against an agent.
    public func recentDenials(_ agent: String, at now: Int64) -> Int {
        denials[agent, default: []].filter { now - $0 < policy.windowMs }.count
    }

    /// An operator's release. Returns false if the agent was not quarantined.
    @discardableResult
    public mutating func release(_ agent: String) -> Bool {
        denials[agent] = []
        return quarantined.removeValue(forKey: agent) != nil
    }
}
