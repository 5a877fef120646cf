import Micrograd

extension GraphEncoder {
    /// Graphviz DOT in micrograd's `draw_dot` style: a record `{ label | data %.4f | grad %.4f }` per value,
    /// a small node per op feeding it, `rankdir=LR`. Node names are positional (`n<i>`, `op<i>`), so any id is
    /// safe; ids only appear inside escaped labels. Leaves, constants and the output have their own colours.
    public static func dot(_ g: EvaluatedGraph) -> [UInt8] {
        let spec = g.spec
        var w = ByteWriter(capacity: 128 + spec.count * 120)
        // A named sans-serif: Graphviz lays text out with the font's metrics, and its default (Times) reads poorly
        // on screen. DejaVu Sans is what Debian's fontconfig installs with graphviz (the runtime image names it).
        // ranksep 0.3 (default 0.5): the page fits a lecture-sized graph at a readable scale.
        w.ascii("digraph micrograd {\n  graph [rankdir=LR, ranksep=0.3, fontname=\"DejaVu Sans\"];\n")
        w.ascii("  node [shape=record, fontname=\"DejaVu Sans\"];\n  edge [fontname=\"DejaVu Sans\"];\n")
        for i in 0..<spec.count {
            let op = spec.ops[i]
            w.ascii("  n")
            w.int(i)
            w.ascii(" [label=\"{ ")
            recordText(spec.labels[i] ?? spec.ids[i], to: &w)
            w.ascii(" | data ")
            FixedDecimal.write4(g.data[i], to: &w)
            w.ascii(" | grad ")
            FixedDecimal.write4(g.grad[i], to: &w)
            w.ascii(" }\"")
            if i == Int(spec.output) {
                w.ascii(", style=filled, fillcolor=\"#c6f6d5\"")
            } else if op == .leaf {
                w.ascii(spec.isConstant[i] ? ", style=filled, fillcolor=\"#e2e8f0\"" : ", style=filled, fillcolor=\"#bee3f8\"")
            }
            w.ascii("];\n")
            guard op != .leaf else { continue }
            w.ascii("  op")
            w.int(i)
            w.ascii(" [shape=ellipse, label=\"")
            w.ascii(op.staticSymbol)
            if op == .powConst { exponentText(spec.values[i], to: &w) }
            w.ascii("\"];\n  op")
            w.int(i)
            w.ascii(" -> n")
            w.int(i)
            w.ascii(";\n")
            // Operand order matters for sub, div and pow: label those edges.
            let ordered = op == .sub || op == .div || op == .pow
            edge(from: spec.lhs[i], to: i, label: ordered ? "0" : nil, &w)
            if spec.rhs[i] >= 0 { edge(from: spec.rhs[i], to: i, label: ordered ? "1" : nil, &w) }
        }
        w.ascii("}\n")
        return w.take()
    }

    private static func edge(from input: Int32, to i: Int, label: StaticString?, _ w: inout ByteWriter) {
        w.ascii("  n")
        w.int(Int(input))
        w.ascii(" -> op")
        w.int(i)
        if let label {
            w.ascii(" [label=\"")
            w.ascii(label)
            w.ascii("\"]")
        }
        w.ascii(";\n")
    }

    /// Text inside a quoted record label: record syntax characters and spaces are backslash-escaped, a quote
    /// becomes `\"` (the DOT lexer's only escape), and control characters are shown as visible escapes, so no
    /// id can end the string, open a field, or put a backslash just before the closing quote.
    static func recordText(_ s: String, to w: inout ByteWriter) {
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "|"), UInt8(ascii: "<"), UInt8(ascii: ">"),
                 UInt8(ascii: "\""), UInt8(ascii: " "):
                w.byte(UInt8(ascii: "\\"))
                w.byte(c)
            case UInt8(ascii: "\\"):
                w.ascii("\\\\")
            case 0x0A:
                w.ascii("\\\\n")
            case 0x0D:
                w.ascii("\\\\r")
            case 0x09:
                w.ascii("\\\\t")
            case 0..<0x20, 0x7F:
                w.ascii("\\\\u00")
                w.byte(ASCII.hexDigit(c >> 4))
                w.byte(ASCII.hexDigit(c))
            default:
                w.byte(c)
            }
        }
    }

    /// micrograd draws `x**2` as op `**2`: integral exponents without ".0", others shortest round-trip.
    /// Only digits, '.', '-', 'e', '+' and the words NaN/Infinity can appear: nothing to escape.
    private static func exponentText(_ e: Double, to w: inout ByteWriter) {
        if e.isFinite && e == e.rounded() && e.magnitude < 1e15 {
            w.int(Int(e))
        } else if e.isFinite {
            w.shortest(e)
        } else {
            w.ascii(e.isNaN ? "NaN" : e < 0 ? "-Infinity" : "Infinity")
        }
    }
}
