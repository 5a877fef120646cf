/// Bounds on what one request may ask for, so a hostile request costs bounded memory and time.
public struct GraphLimits: Sendable, Equatable {
    /// Most nodes a graph may have, counting the constant leaves made from number-literal inputs.
    public var maxNodes: Int
    /// Longest `expression` string, in UTF-8 bytes.
    public var maxExpressionBytes: Int
    /// Longest id (or label, or output reference), in UTF-8 bytes after unescaping.
    public var maxIDBytes: Int

    public init(maxNodes: Int = 1_000_000, maxExpressionBytes: Int = 1 << 20, maxIDBytes: Int = 1024) {
        self.maxNodes = maxNodes
        self.maxExpressionBytes = maxExpressionBytes
        self.maxIDBytes = maxIDBytes
    }
}
