import Micrograd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Response bodies for an evaluated graph (JSON, DOT, JGF) and for problems. Byte writers throughout:
/// Foundation's JSONEncoder is an order of magnitude slower and writes `4` for 4.0. Same input, same bytes.
public enum GraphEncoder {
    /// The evaluate response: `{"id","output","value","nodes":[...]}`, nodes in topological order.
    ///
    /// Written straight into the result's storage, allocated at an upper bound of its size: a guess of 80 bytes
    /// per node fell short for full-precision numbers (~91), and the regrowth copied the body into fresh pages;
    /// the bound's untouched tail costs address space only, no resident memory.
    /// `graphID` nil: no `id` member (the graph was answered but not stored).
    public static func json(_ g: EvaluatedGraph, graphID: String?) -> [UInt8] {
        ByteWriter.bytes(bound: jsonSizeBound(g, graphID: graphID)) { writeJSON(g, graphID: graphID, to: &$0) }
    }

    /// The output's id and value (`"d","value":4.0`; nulls for an empty graph): shared by the JSON and JGF writers.
    static func writeOutput(of g: EvaluatedGraph, to w: inout ByteWriter) {
        guard g.spec.count > 0 else { return w.ascii("null,\"value\":null") }
        w.jsonString(g.spec.ids[Int(g.spec.output)])
        w.ascii(",\"value\":")
        w.jsonNumber(g.outputValue)
    }

    static func writeJSON(_ g: EvaluatedGraph, graphID: String?, to w: inout ByteWriter) {
        writeHead(g, graphID: graphID, to: &w)
        for i in 0..<g.spec.count {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            writeNodeHead(g.spec, i, to: &w)
            w.jsonNumber(g.data[i])
            writeNodeTail(grad: g.grad[i], to: &w)
        }
        w.ascii("]}")
    }

    /// Up to the nodes' array: `{"id":...,"output":...,"value":...,"nodes":[`.
    static func writeHead(_ g: EvaluatedGraph, graphID: String?, to w: inout ByteWriter) {
        if let graphID {
            w.ascii("{\"id\":")
            w.jsonString(graphID)
            w.ascii(",\"output\":")
        } else {
            w.ascii("{\"output\":")
        }
        writeOutput(of: g, to: &w)
        w.ascii(",\"nodes\":[")
    }

    /// A node's members up to its data's value: `{"id":...,"label":...,"op":...,"inputs":[...],"data":`.
    /// All of it depends on the spec only (what ``JSONSkeleton`` keeps).
    static func writeNodeHead(_ spec: GraphSpec, _ i: Int, to w: inout ByteWriter) {
        w.ascii("{\"id\":")
        w.jsonString(spec.ids[i])
        if let label = spec.labels[i] {
            w.ascii(",\"label\":")
            w.jsonString(label)
        }
        let op = spec.ops[i]
        if op != .leaf {
            w.ascii(",\"op\":\"")
            w.ascii(op.staticName)
            w.ascii("\",\"inputs\":[")
            w.jsonString(spec.ids[Int(spec.lhs[i])])
            if spec.rhs[i] >= 0 {
                w.byte(UInt8(ascii: ","))
                w.jsonString(spec.ids[Int(spec.rhs[i])])
            }
            w.byte(UInt8(ascii: "]"))
            if op == .powConst {
                w.ascii(",\"exponent\":")
                w.jsonNumber(spec.values[i])
            }
        } else if spec.isConstant[i] {
            w.ascii(",\"constant\":true")
        }
        w.ascii(",\"data\":")
    }

    @inline(__always)
    static func writeNodeTail(grad: Double, to w: inout ByteWriter) {
        w.ascii(",\"grad\":")
        w.jsonNumber(grad)
        w.byte(UInt8(ascii: "}"))
    }

    /// The evaluate response for an evaluation of the graph `skeleton` was made from (the same nodes, any leaf
    /// values): the same bytes as ``json(_:graphID:)``, with each node's spec-only members copied from the
    /// skeleton, and a leaf's data too where it is still the value the skeleton wrote.
    public static func json(_ g: EvaluatedGraph, graphID: String?, skeleton: JSONSkeleton) -> [UInt8] {
        precondition(skeleton.nodeCount == g.spec.count, "a skeleton answers only the graph it was made from")
        let bound = skeleton.text.count + g.spec.count * (2 * ShortestDecimal.maxLength + 16)
            + jsonHeadBound(g, graphID: graphID)
        return ByteWriter.bytes(bound: bound) { w in
            writeHead(g, graphID: graphID, to: &w)
            skeleton.text.withUnsafeBufferPointer { text in
                skeleton.ends.withUnsafeBufferPointer { ends in
                    skeleton.leafValues.withUnsafeBufferPointer { leafValues in
                        g.data.withUnsafeBufferPointer { data in
                            g.grad.withUnsafeBufferPointer { grad in
                                var start = 0
                                for i in 0..<data.count {
                                    if i > 0 { w.byte(UInt8(ascii: ",")) }
                                    let headEnd = Int(ends[2 * i]), dataEnd = Int(ends[2 * i + 1])
                                    if dataEnd > headEnd && data[i].bitPattern == leafValues[i].bitPattern {
                                        w.bytes(UnsafeBufferPointer(rebasing: text[start..<dataEnd]))
                                    } else {
                                        w.bytes(UnsafeBufferPointer(rebasing: text[start..<headEnd]))
                                        w.jsonNumber(data[i])
                                    }
                                    writeNodeTail(grad: grad[i], to: &w)
                                    start = dataEnd
                                }
                            }
                        }
                    }
                }
            }
            w.ascii("]}")
        }
    }

    /// What ``writeHead(_:graphID:to:)`` writes at most.
    static func jsonHeadBound(_ g: EvaluatedGraph, graphID: String?) -> Int {
        let output = g.spec.count > 0 ? g.spec.ids[Int(g.spec.output)].utf8.count : 0
        return 64 + ShortestDecimal.room + 6 * ((graphID?.utf8.count ?? 0) + output)
    }

    /// The spec-only text of each node of `spec` written once (``JSONSkeleton``), for answering many evaluations
    /// of one registered graph.
    public static func jsonSkeleton(_ spec: GraphSpec) -> JSONSkeleton {
        var ends = [Int32]()
        ends.reserveCapacity(2 * spec.count)
        var leafValues = [Double](repeating: .nan, count: spec.count)
        var stringBytes = 0
        for i in 0..<spec.count {
            stringBytes += spec.ids[i].utf8.count + (spec.labels[i]?.utf8.count ?? 0)
            if spec.lhs[i] >= 0 { stringBytes += spec.ids[Int(spec.lhs[i])].utf8.count }
            if spec.rhs[i] >= 0 { stringBytes += spec.ids[Int(spec.rhs[i])].utf8.count }
        }
        let text = ByteWriter.bytes(bound: spec.count * (100 + 2 * ShortestDecimal.maxLength) + 6 * stringBytes
                                    + ShortestDecimal.room) { w in
            for i in 0..<spec.count {
                writeNodeHead(spec, i, to: &w)
                ends.append(Int32(w.count))
                if spec.ops[i] == .leaf && spec.values[i].isFinite {
                    w.jsonNumber(spec.values[i])
                    leafValues[i] = spec.values[i]
                }
                ends.append(Int32(w.count))
            }
        }
        return JSONSkeleton(text: text, ends: ends, leafValues: leafValues)
    }

    /// At most what `json` writes: per node 100 bytes of punctuation and member names, 3 numbers of at most
    /// `ShortestDecimal.maxLength` bytes, and its strings (id, label, input ids) quoted and escaped (at most 6
    /// bytes per byte); and `room` for writing the last number.
    static func jsonSizeBound(_ g: EvaluatedGraph, graphID: String?) -> Int {
        let spec = g.spec
        var stringBytes = (graphID?.utf8.count ?? 0) + (spec.count > 0 ? spec.ids[Int(spec.output)].utf8.count : 0)
        for i in 0..<spec.count {
            stringBytes += spec.ids[i].utf8.count + (spec.labels[i]?.utf8.count ?? 0)
            if spec.lhs[i] >= 0 { stringBytes += spec.ids[Int(spec.lhs[i])].utf8.count }
            if spec.rhs[i] >= 0 { stringBytes += spec.ids[Int(spec.rhs[i])].utf8.count }
        }
        return 128 + ShortestDecimal.room + spec.count * (100 + 3 * ShortestDecimal.maxLength + 4 * 2) + 6 * stringBytes
    }

    /// An RFC 9457 `application/problem+json` body; the location's members are extension members.
    /// The caller chooses `type`, `title` and `status` (the service's mapping of a ``Problem/Kind``).
    public static func problem(
        type: String, title: String, status: Int, detail: String, instance: String? = nil,
        location: Problem.Location = .init()
    ) -> [UInt8] {
        let (pointer, column, line, unbound) = (location.pointer, location.column, location.line, location.unbound)
        var w = ByteWriter(capacity: 256 + detail.utf8.count + 16 * (unbound?.count ?? 0))
        w.ascii("{\"type\":")
        w.jsonString(type)
        w.ascii(",\"title\":")
        w.jsonString(title)
        w.ascii(",\"status\":")
        w.int(status)
        w.ascii(",\"detail\":")
        w.jsonString(detail)
        if let instance {
            w.ascii(",\"instance\":")
            w.jsonString(instance)
        }
        if let pointer {
            w.ascii(",\"pointer\":")
            w.jsonString(pointer)
        }
        if let line {
            w.ascii(",\"line\":")
            w.int(line)
        }
        if let column {
            w.ascii(",\"column\":")
            w.int(column)
        }
        if let unbound {
            w.ascii(",\"unbound\":[")
            for (i, name) in unbound.enumerated() {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                w.jsonString(name)
            }
            w.byte(UInt8(ascii: "]"))
        }
        w.byte(UInt8(ascii: "}"))
        return w.take()
    }

    /// A JSON string literal for `text` (RFC 8259 escaping), for callers outside this module that build JSON.
    public static func jsonString(_ text: String) -> String {
        var w = ByteWriter(capacity: text.utf8.count + 2)
        w.jsonString(text)
        return String(decoding: w.take(), as: UTF8.self)
    }
}
