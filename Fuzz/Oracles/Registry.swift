/// Every fuzz target by name (the folder under Fuzz/, the regression folder under Tests/FuzzRegressions/).
public enum FuzzTargets {
    public static let all: [(name: String, oracle: Oracle)] = [
        ("json", JSONOracle.check),
        ("rpc-lines", RPCLinesThroughNIO.check),
        ("audit-verify", AuditOracle.check),
        ("modbus-replies", ModbusRepliesOracle.check),
        ("bacnet-replies", BACnetRepliesOracle.check),
        ("site-yaml", SiteOracle.checkWithLoader),
        ("scenario-yaml", ScenarioOracle.check),
    ]

    public static func oracle(named name: String) -> Oracle? { all.first { $0.name == name }?.oracle }
}
