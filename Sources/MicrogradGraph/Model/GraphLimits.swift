/// Size limits a request must stay within. Every limit is enforced while reading, before the work it guards.
public struct GraphLimits: Sendable, Equatable {
    /// Most nodes in one graph, generated constant nodes included (over: 422 invalid-graph).
    public var maxNodes: Int
    /// Longest expression source, in UTF-8 bytes (over: 413 too-large).
    public var maxExpressionBytes: Int
    /// Longest node id or label, in characters (Unicode scalars, as JSON Schema's maxLength counts them;
    /// over: 422 invalid-graph). 256 characters are at most 1 KiB of UTF-8.
    public var maxIDLength: Int
    /// Most rows x nodes in one batch (over: 413 too-large). 10^8 node-rows is about 0.1-0.3 s of work.
    public var maxBatchCells: Int

    public init(maxNodes: Int = 1_000_000, maxExpressionBytes: Int = 1 << 20, maxIDLength: Int = 256,
                maxBatchCells: Int = 100_000_000) {
        self.maxNodes = maxNodes
        self.maxExpressionBytes = maxExpressionBytes
        self.maxIDLength = maxIDLength
        self.maxBatchCells = maxBatchCells
    }

    /// 413 when an expression of `byteCount` UTF-8 bytes is over ``maxExpressionBytes``: the one check, made by
    /// the decoder before it builds the source String and by the compiler for callers that skip the decoder.
    public func expressionSizeProblem(byteCount: Int) -> Problem? {
        guard byteCount > maxExpressionBytes else { return nil }
        return .tooLarge("The expression is \(byteCount) bytes; the limit is \(maxExpressionBytes).", pointer: "/expression")
    }
}
