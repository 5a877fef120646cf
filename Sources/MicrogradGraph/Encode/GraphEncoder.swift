import Micrograd

/// Response bodies for an evaluated graph (JSON, DOT, JGF) and for problems. Byte writers throughout:
/// Foundation's JSONEncoder writes ~35 MB/s and `4` for 4.0 (FIELD-NOTES). Same input, same bytes.
public enum GraphEncoder {
    /// issue 4's response: `{"id","output","value","nodes":[...]}`, nodes in topological order.
    public static func json(_ g: EvaluatedGraph, graphID: String) -> [UInt8] {
        let spec = g.spec
        var w = ByteWriter(capacity: 128 + spec.count * 80)
        w.ascii("{\"id\":")
        w.jsonString(graphID)
        w.ascii(",\"output\":")
        if spec.count > 0 {
            w.jsonString(spec.ids[Int(spec.output)])
            w.ascii(",\"value\":")
            w.jsonNumber(g.outputValue)
        } else {
            w.ascii("null,\"value\":null")
        }
        w.ascii(",\"nodes\":[")
        for i in 0..<spec.count {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
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
            w.jsonNumber(g.data[i])
            w.ascii(",\"grad\":")
            w.jsonNumber(g.grad[i])
            w.byte(UInt8(ascii: "}"))
        }
        w.ascii("]}")
        return w.take()
    }

    /// An RFC 9457 `application/problem+json` body; `pointer` and `column` are extension members.
    public static func problem(_ p: Problem, instance: String?) -> [UInt8] {
        var w = ByteWriter(capacity: 256 + p.detail.utf8.count)
        w.ascii("{\"type\":")
        w.jsonString(p.type)
        w.ascii(",\"title\":")
        w.jsonString(p.title)
        w.ascii(",\"status\":")
        w.int(p.status)
        w.ascii(",\"detail\":")
        w.jsonString(p.detail)
        if let instance {
            w.ascii(",\"instance\":")
            w.jsonString(instance)
        }
        if let pointer = p.pointer {
            w.ascii(",\"pointer\":")
            w.jsonString(pointer)
        }
        if let column = p.column {
            w.ascii(",\"column\":")
            w.int(column)
        }
        w.byte(UInt8(ascii: "}"))
        return w.take()
    }
}
