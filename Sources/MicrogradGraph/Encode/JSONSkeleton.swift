/// The parts of a graph's JSON answer that depend on its spec only, written once: per node its members up to
/// `"data":` and, for a leaf, its value's text. A registered graph is answered again and again with new values;
/// copying these bytes replaces escaping ids and formatting the unchanged leaves' numbers on every request
/// (``GraphEncoder/json(_:graphID:skeleton:)``). Made by ``GraphEncoder/jsonSkeleton(_:)``.
public struct JSONSkeleton: Sendable {
    /// Node after node: its head, then its leaf value's text (empty for an op, or a non-finite value).
    let text: [UInt8]
    /// Per node, where its head ends and where its value text ends in `text` (2 per node; fits: the text
    /// of a graph within the node limit is far under 2 GiB).
    let ends: [Int32]
    /// The value each leaf's text stands for (unused where a node has no value text). Only a bit-identical
    /// value reuses the text.
    let leafValues: [Double]

    public var nodeCount: Int { leafValues.count }
    /// Bytes held (for bounding a cache of skeletons).
    public var byteCount: Int { text.count + 4 * ends.count + 8 * leafValues.count }
}
