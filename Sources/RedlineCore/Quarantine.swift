/// Runtime monitoring (docs/DESIGN.md §6.1) as a value driven by an explicit clock.
///
/// An agent with `policy.threshold` red-line denials within `policy.windowMs`
/// is quarantined until an operator releases it.
public struct QuarantineBook: Sendable, Hashable {
    public let policy: QuarantinePolicy
    private var denials: [String: [Int64]] = [:]
    /// Quarantined agents and when quarantine began.
    public private(set) var quarantined: [String: Int64] = [:]

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
        if list.count >= policy.threshold {
            quarantined[agent] = now
            denials[agent] = []
            return true
        }
        return false
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
