import Testing
import Micrograd

/// IEEE-754 semantics at the edges, like PyTorch: infinities and NaNs, never a trap.
@Suite struct DomainEdgeTests {
    @Test func logarithmEdges() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let zero = Value(0, on: tape)
        let l0 = zero.log()
        l0.backward()
        #expect(l0.data == -.infinity)
        #expect(zero.grad == .infinity)
        #expect(Value(-1, on: tape).log().data.isNaN)
    }

    @Test func divisionByZero() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let one = Value(1, on: tape), zero = Value(0, on: tape)
        #expect((one / zero).data == .infinity)
        #expect((-one / zero).data == -.infinity)
        #expect((zero / zero).data.isNaN)
        let q = one / zero
        q.backward()
        #expect(one.grad == .infinity)
    }

    @Test func tanhSaturatesWithoutOverflow() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        for (x, expected) in [(1000.0, 1.0), (-1000.0, -1.0), (1e308, 1.0), (-.infinity, -1.0)] {
            let v = Value(x, on: tape)
            let t = v.tanh()
            t.backward()
            #expect(t.data == expected)
            #expect(v.grad == 0)
        }
    }

    @Test func sigmoidIsStableOnBothSides() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        for (x, expected) in [(1000.0, 1.0), (-1000.0, 0.0), (0.0, 0.5), (.infinity, 1.0), (-.infinity, 0.0)] {
            let v = Value(x, on: tape)
            let s = v.sigmoid()
            s.backward()
            #expect(s.data == expected)
            #expect(v.grad == (x == 0 ? 0.25 : 0))
            #expect(!v.grad.isNaN)
        }
        #expect(Value(-745, on: tape).sigmoid().data > 0)  // exp(-745) is subnormal, not 0
    }

    @Test func expOverflowsToInfinity() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let v = Value(1000, on: tape)
        let e = v.exp()
        e.backward()
        #expect(e.data == .infinity)
        #expect(v.grad == .infinity)
        #expect(Value(-1000, on: tape).exp().data == 0)
    }

    @Test func reluDerivativeAtZeroIsZero() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let v = Value(0, on: tape)
        let r = v.relu()
        r.backward()
        #expect(r.data == 0)
        #expect(v.grad == 0)
        let n = Value(-2, on: tape)
        n.relu().backward()
        #expect(n.grad == 0)
        #expect(Value(.nan, on: tape).relu().data.isNaN)
    }

    @Test func powerEdgesFollowPyTorch() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        // 0 ** 2 with a value exponent: d/db = 0 ** 2 * ln 0 = 0 * -inf, masked to 0 as in PyTorch.
        let base = Value(0, on: tape), exponent = Value(2, on: tape)
        let p = base.pow(exponent)
        p.backward()
        #expect(p.data == 0)
        #expect(base.grad == 0)
        #expect(exponent.grad == 0)
        // x ** 0 has derivative 0 even at x = 0 (not 0 * 0 ** -1 = NaN).
        let z = Value(0, on: tape)
        let one = z.pow(0)
        one.backward()
        #expect(one.data == 1)
        #expect(z.grad == 0)
        // A negative base with a fractional exponent is NaN, like libm and PyTorch.
        #expect(Value(-8, on: tape).pow(1.0 / 3).data.isNaN)
        // 0 ** -1 = inf.
        #expect(Value(0, on: tape).pow(-1).data == .infinity)
    }

    @Test func nanPropagatesWithoutTrapping() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let v = Value(.nan, on: tape)
        let out = (v * 2 + 1).tanh().exp().log().sigmoid()
        out.backward()
        #expect(out.data.isNaN)
        #expect(v.grad.isNaN)
    }
}
