import RedlineCore

/// Agents are never operators: no agent account may belong to a group the site admits to the
/// operator socket. The operator socket admits by the connecting process's primary and
/// supplementary groups, so an agent whose account is in an operator group could approve its
/// own held writes and release its own quarantine.
public enum OperatorSeparation {
    /// One line per agent account found in an operator group (empty when the site is clean).
    public static func violations(site: Site, accounts: AccountDatabase) -> [String] {
        var out: [String] = []
        for op in site.operators {
            guard let gid = op.gid else { continue }
            let groups = accounts.groupsWithGID(gid)
            let groupName = groups.first.map { "'\($0.name)' (gid \(gid))" } ?? "gid \(gid)"
            for agent in site.agents {
                let user = accounts.userWithUID(agent.uid)
                let who = "agent '\(agent.name)' (uid \(agent.uid)\(user.map { ", user '\($0.name)'" } ?? ""))"
                if let user, user.gid == gid {
                    out.append("\(who) has operator group \(groupName) as its primary group; an agent must never hold operator rights: give the agent's account another primary group or remove the operator gid from the site")
                }
                for g in groups {
                    // Members are names; an alias (another name with the same uid) is the same account.
                    let hits = g.members.filter { m in m == user?.name || accounts.userNamed(m)?.uid == agent.uid }
                    for m in Set(hits).sorted() {
                        out.append("\(who) is a member of operator group '\(g.name)' (gid \(gid)) as '\(m)' in the group database; an agent must never hold operator rights: gpasswd -d \(m) \(g.name)")
                    }
                }
            }
        }
        return out
    }
}
