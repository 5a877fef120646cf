/// Size limits a request must stay within. Every limit is enforced while reading, before the work it guards.
public struct GraphLimits: Sendable, Equatable {
    /// Most nodes in one graph, generated constant nodes included (over: 422 invalid-graph).
    public var maxNodes: Int
    /// Longest expression source, in UTF-8 bytes (over: 413 too-large).
    public var maxExpressionBytes: Int
    /// Longest node id or label, in UTF-8 bytes (over: 422 invalid-graph).
    public var maxIDBytes: Int

    public init(maxNodes: Int = 1_000_000, maxExpressionBytes: Int = 1 << 20, maxIDBytes: Int = 1024) {
        self.maxNodes = maxNodes
        self.maxExpressionBytes = maxExpressionBytes
        self.maxIDBytes = maxIDBytes
    }
}
