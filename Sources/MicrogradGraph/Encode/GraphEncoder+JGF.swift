import Micrograd

extension GraphEncoder {
    /// JSON Graph Format v2 (`application/vnd.jgf+json`): `{"graph": {...}}` with nodes keyed by id (ids are
    /// unique, so keys never repeat) carrying op/data/grad in metadata, and one edge per input with its operand index.
    /// `graphID` nil: no `id` member (the graph was answered but not stored).
    public static func jgf(_ g: EvaluatedGraph, graphID: String?) -> [UInt8] {
        let spec = g.spec
        var w = ByteWriter(capacity: 256 + spec.count * 160)
        w.ascii("{\"graph\":{")
        if let graphID {
            w.ascii("\"id\":")
            w.jsonString(graphID)
            w.byte(UInt8(ascii: ","))
        }
        w.ascii("\"type\":\"micrograd\",\"directed\":true,\"metadata\":{\"output\":")
        writeOutput(of: g, to: &w)
        w.ascii("},\"nodes\":{")
        for i in 0..<spec.count {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            w.jsonString(spec.ids[i])
            w.ascii(":{\"label\":")
            w.jsonString(spec.labels[i] ?? spec.ids[i])
            w.ascii(",\"metadata\":{\"op\":\"")
            w.ascii(spec.ops[i].staticName)
            w.byte(UInt8(ascii: "\""))
            if spec.ops[i] == .powConst {
                w.ascii(",\"exponent\":")
                w.jsonNumber(spec.values[i])
            }
            if spec.isConstant[i] { w.ascii(",\"constant\":true") }
            w.ascii(",\"data\":")
            w.jsonNumber(g.data[i])
            w.ascii(",\"grad\":")
            w.jsonNumber(g.grad[i])
            w.ascii("}}")
        }
        w.ascii("},\"edges\":[")
        var first = true
        for i in 0..<spec.count where spec.ops[i] != .leaf {
            for index in 0..<2 {
                let input = index == 0 ? spec.lhs[i] : spec.rhs[i]
                guard input >= 0 else { continue }
                if !first { w.byte(UInt8(ascii: ",")) }
                first = false
                w.ascii("{\"source\":")
                w.jsonString(spec.ids[Int(input)])
                w.ascii(",\"target\":")
                w.jsonString(spec.ids[i])
                w.ascii(",\"relation\":\"input\",\"metadata\":{\"index\":")
                w.int(index)
                w.ascii("}}")
            }
        }
        w.ascii("]}}")
        return w.take()
    }
}
