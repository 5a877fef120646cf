import Testing
import Micrograd

/// karpathy/micrograd's test/test_engine.py, with the numbers PyTorch gives there.
@Suite struct MicrogradReferenceTests {
    static func relativelyClose(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * abs(b) }

    @Test func sanityCheck() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let x = Value(-4.0, on: tape)
        let z = 2 * x + 2 + x
        let q = z.relu() + z * x
        let h = (z * z).relu()
        let y = h + q + q * x
        y.backward()
        #expect(y.data == -20)
        #expect(x.grad == 46)
    }

    @Test func moreOps() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(-4.0, on: tape)
        let b = Value(2.0, on: tape)
        var c = a + b
        var d = a * b + b.pow(3)
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        let e = c - d
        let f = e.pow(2)
        var g = f / 2.0
        g += 10.0 / f
        g.backward()
        #expect(Self.relativelyClose(g.data, 24.70408163265306))
        #expect(Self.relativelyClose(a.grad, 138.83381924198252))
        #expect(Self.relativelyClose(b.grad, 645.5772594752186))
    }
}
