import Foundation
import Testing
import RedlineConfig
import RedlineCore

/// Issue 11, "agents are never operators" (configuration side): agents may be named by user
/// name, resolved when the site is loaded; and no agent account may be in an operator group.
@Suite("Issue 11: agents by user name, and never in an operator group")
struct AgentAccountTests {
    static let base = VariantTests.base
    static let accounts = AccountDatabase(
        users: [
            .init(name: "facilities-agent", uid: 2001, gid: 2001),
            .init(name: "fa-alias", uid: 2001, gid: 2001),
            .init(name: "reporting-agent", uid: 2002, gid: 3000),
            .init(name: "alice", uid: 1000, gid: 1000),
        ],
        groups: [
            .init(name: "facilities-agent", gid: 2001, members: []),
            .init(name: "redline-operators", gid: 3000, members: ["alice"]),
            .init(name: "wheel", gid: 10, members: ["alice", "facilities-agent"]),
            .init(name: "ops-alias", gid: 10, members: ["fa-alias"]),
        ])

    static func load(_ text: String, accounts: AccountDatabase = Self.accounts) throws -> Result<Site, ConfigErrors> {
        let file = try temporaryFile(text)
        do {
            return .success(try SiteLoader.load(siteFile: file, devicesDir: devicesDir,
                                                environment: LoaderEnvironment(hosts: .system, accounts: accounts)))
        } catch {
            return .failure(error)
        }
    }

    @Test func agentNamedByUserIsResolvedToItsUID() throws {
        let text = Self.base.replacingOccurrences(of: "    uid: 2001\n", with: "    user: facilities-agent\n")
        let site = try Self.load(text).get()
        #expect(site.agent(named: "agent-a")?.uid == 2001)
        // uid: keeps working.
        #expect(try Self.load(Self.base).get().agent(named: "agent-a")?.uid == 2001)
    }

    @Test func unknownAgentUserIsRefusedAtItsPosition() throws {
        let file = FixtureTests.fixtures.appendingPathComponent("sites/agent-unknown-user.yaml").path
        let d = diagnostics(site: file)
        #expect(d.map(\.description) == ["\(file):15:11: unknown user 'redline-no-such-user': no such account in the user database (getpwnam); create it or name the agent by uid"])
    }

    @Test func agentNamedByAnOperatorsUserIsRefused() throws {
        // root is uid 0 on every system: the site's operator. The system user database resolves it.
        let text = Self.base.replacingOccurrences(of: "    uid: 2001\n", with: "    user: root\n")
        let file = try temporaryFile(text)
        let d = diagnostics(site: file)
        #expect(d.count == 1 && d[0].message.contains("uid 0 is an operator"), "\(d)")
        #expect(String(try FixtureTests.text(file, line: d[0].line, column: d[0].column)).hasPrefix("root"))
    }

    @Test func agentWithBothUidAndUserIsRefused() throws {
        let text = Self.base.replacingOccurrences(of: "    uid: 2001\n", with: "    uid: 2001\n    user: facilities-agent\n")
        guard case .failure(let e) = try Self.load(text) else { Issue.record("loaded"); return }
        #expect(e.diagnostics.count == 1 && e.diagnostics[0].message.contains("exactly one of uid or user"), "\(e)")
    }

    // MARK: start-up check of the group database

    static func site(operatorGIDs: [UInt32], agentUIDs: [UInt32] = [2001, 2002]) -> Site {
        Site(name: "s", zones: [Zone(id: "z")], points: [],
             agents: agentUIDs.enumerated().map { Agent(name: ["facilities-agent", "reporting-agent", "third"][$0.offset], uid: $0.element, read: [], write: []) },
             operators: operatorGIDs.map { Operator(gid: $0) } + [Operator(uid: 0)])
    }

    @Test func agentInAnOperatorGroupIsRefused() {
        // wheel (gid 10) lists facilities-agent as a member.
        let v = OperatorSeparation.violations(site: Self.site(operatorGIDs: [10]), accounts: Self.accounts)
        #expect(v.contains { $0.hasPrefix("agent 'facilities-agent' (uid 2001, user 'facilities-agent') is a member of operator group 'wheel' (gid 10) as 'facilities-agent'") && $0.hasSuffix("gpasswd -d facilities-agent wheel") }, "\(v)")
    }

    @Test func agentAliasListedInAnotherEntryOfTheGroupIsRefused() {
        // gid 10 is listed twice (wheel, ops-alias); ops-alias names fa-alias, another name of uid 2001.
        let v = OperatorSeparation.violations(site: Self.site(operatorGIDs: [10]), accounts: Self.accounts)
        #expect(v.contains { $0.contains("is a member of operator group 'ops-alias' (gid 10) as 'fa-alias'") }, "\(v)")
        #expect(v.count == 2, "\(v)")
    }

    @Test func agentWhosePrimaryGroupIsAnOperatorGroupIsRefused() {
        // reporting-agent's primary group is 3000, redline-operators, though it is not a listed member.
        let v = OperatorSeparation.violations(site: Self.site(operatorGIDs: [3000]), accounts: Self.accounts)
        #expect(v == ["agent 'reporting-agent' (uid 2002, user 'reporting-agent') has operator group 'redline-operators' (gid 3000) as its primary group; an agent must never hold operator rights: give the agent's account another primary group or remove the operator gid from the site"])
    }

    @Test func operatorGroupsWithoutAgentsAreAccepted() {
        #expect(OperatorSeparation.violations(site: Self.site(operatorGIDs: [3000], agentUIDs: [2001]), accounts: Self.accounts).isEmpty)
        // An agent uid with no account has no groups to be in.
        #expect(OperatorSeparation.violations(site: Self.site(operatorGIDs: [10, 3000], agentUIDs: [4242]), accounts: Self.accounts).isEmpty)
        // Operators by uid are the loader's business (an agent with an operator's uid is refused there).
        #expect(OperatorSeparation.violations(site: Self.site(operatorGIDs: []), accounts: Self.accounts).isEmpty)
    }

    @Test func systemGroupDatabaseIsRead() {
        // gid 0 (root) exists everywhere; uid 0 is root's account and has it as primary group.
        let v = OperatorSeparation.violations(site: Self.site(operatorGIDs: [0], agentUIDs: [0]), accounts: .system)
        #expect(v.contains { $0.contains("as its primary group") }, "\(v)")
        #expect(AccountDatabase.system.userNamed("root")?.uid == 0)
        #expect(AccountDatabase.system.groupsWithGID(0).contains { $0.gid == 0 })
    }
}
