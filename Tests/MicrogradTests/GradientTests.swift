import Testing
import Micrograd

/// Every op's gradient against central finite differences, and the summation rules of backward.
@Suite struct GradientTests {
    /// d f/d x by central differences, with f built fresh on its own tape.
    static func numeric(_ f: (Double) -> Double, at x: Double, h: Double = 1e-6) -> Double {
        (f(x + h) - f(x - h)) / (2 * h)
    }

    static func close(_ a: Double, _ b: Double, tolerance: Double = 1e-6) -> Bool {
        abs(a - b) <= tolerance * max(1, abs(a), abs(b))
    }

    typealias Unary = @Sendable (Value) -> Value
    typealias Binary = @Sendable (Value, Value) -> Value

    static let unaryCases: [(String, Unary, [Double])] = [
        ("neg", { -$0 }, [-1.5, 0.3, 2]),
        ("powConst 3", { $0.pow(3) }, [-1.5, 0.3, 2]),
        ("powConst -0.5", { $0.pow(-0.5) }, [0.3, 2]),
        ("powConst 0", { $0.pow(0) }, [-1.5, 2]),
        ("exp", { $0.exp() }, [-1.5, 0.3, 2]),
        ("log", { $0.log() }, [0.3, 2, 10]),
        ("tanh", { $0.tanh() }, [-1.5, 0.3, 2]),
        ("relu", { $0.relu() }, [-1.5, 0.3, 2]),
        ("sigmoid", { $0.sigmoid() }, [-5, -1.5, 0.3, 2, 5]),
        ("number - x", { 1 - $0 }, [0.7]),
        ("number / x", { 3 / $0 }, [0.7, -2]),
    ]

    static let binaryCases: [(String, Binary, [(Double, Double)])] = [
        ("add", { $0 + $1 }, [(1.5, -2), (0.3, 0.3)]),
        ("sub", { $0 - $1 }, [(1.5, -2), (0.3, 0.7)]),
        ("mul", { $0 * $1 }, [(1.5, -2), (0.3, 0.7)]),
        ("div", { $0 / $1 }, [(1.5, -2), (0.3, 0.7)]),
        ("pow", { $0.pow($1) }, [(1.5, -2), (0.3, 0.7), (2, 3)]),
        ("composite", { ($0 * $1 + $0.exp()).tanh() / ($1 * $1 + 1) }, [(0.2, -0.4)]),
    ]

    @Test(arguments: 0..<unaryCases.count)
    func unaryMatchesFiniteDifferences(_ k: Int) {
        let (name, f, points) = Self.unaryCases[k]
        for x in points {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let v = Value(x, on: tape)
            let out = f(v)
            out.backward()
            let expected = Self.numeric({ t in let s = Tape(); return withExtendedLifetime(s) { f(Value(t, on: s)).data } }, at: x)
            #expect(Self.close(v.grad, expected), "\(name) at \(x): backward \(v.grad), finite differences \(expected)")
        }
    }

    @Test(arguments: 0..<binaryCases.count)
    func binaryMatchesFiniteDifferences(_ k: Int) {
        let (name, f, points) = Self.binaryCases[k]
        for (x, y) in points {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let a = Value(x, on: tape), b = Value(y, on: tape)
            f(a, b).backward()
            let dx = Self.numeric({ t in let s = Tape(); return withExtendedLifetime(s) { f(Value(t, on: s), Value(y, on: s)).data } }, at: x)
            let dy = Self.numeric({ t in let s = Tape(); return withExtendedLifetime(s) { f(Value(x, on: s), Value(t, on: s)).data } }, at: y)
            #expect(Self.close(a.grad, dx), "\(name) d/dx at (\(x), \(y)): backward \(a.grad), finite differences \(dx)")
            #expect(Self.close(b.grad, dy), "\(name) d/dy at (\(x), \(y)): backward \(b.grad), finite differences \(dy)")
        }
    }

    @Test func everyOpIsCoveredByAFiniteDifferenceCase() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        var seen = Set<Op>()
        let x = Value(0.5, on: tape), y = Value(0.25, on: tape)
        for (_, f, _) in Self.unaryCases { for v in f(x).topologicalOrder() { seen.insert(v.op) } }
        for (_, f, _) in Self.binaryCases { for v in f(x, y).topologicalOrder() { seen.insert(v.op) } }
        #expect(seen == Set(Op.allCases))
    }

    // MARK: reuse (micrograd's "bug" cases from the lecture)

    @Test func aNodeUsedTwiceGetsBothContributions() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(3, on: tape)
        let b = a + a
        b.backward()
        #expect(a.grad == 2)
        let c = Value(3, on: tape)
        (c * c).backward()
        #expect(c.grad == 6)
    }

    @Test func sharedSubexpressions() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(-2, on: tape), b = Value(3, on: tape)
        let d = a * b, e = a + b
        let f = d * e
        f.backward()
        #expect(f.data == -6)
        #expect(a.grad == -3)
        #expect(b.grad == -8)
    }

    @Test func backwardAccumulatesUntilGradsAreReset() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(2, on: tape), b = Value(5, on: tape)
        let c = a * b
        c.backward()
        c.backward()
        #expect(a.grad == 10)  // accumulated twice, as in micrograd
        #expect(c.grad == 1)   // the output is seeded, not accumulated
        c.zeroGrad()
        #expect(a.grad == 0 && b.grad == 0 && c.grad == 0)
        c.backward()
        #expect(a.grad == 5 && b.grad == 2)
        tape.zeroGrad()
        #expect(a.grad == 0 && c.grad == 0)
    }

    @Test func onlyAncestorsReceiveGradients() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(0, on: tape)
        let sideBranch = a.log()  // d log/da = 1/0 = inf: must not reach `a` as 0 * inf = NaN
        let unrelated = Value(4, on: tape)
        let out = a * 3
        let later = out * 2       // after the output: untouched
        out.backward()
        #expect(a.grad == 3)
        #expect(sideBranch.grad == 0)
        #expect(unrelated.grad == 0)
        #expect(later.grad == 0)
    }

    @Test func backwardIsDeterministic() {
        func run() -> [UInt64] {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let xs = (0..<50).map { Value(Double($0) * 0.1 - 2.5, on: tape) }
            var acc = Value(0, on: tape)
            for (i, x) in xs.enumerated() { acc = acc + (x * xs[(i * 7) % xs.count]).tanh() * x.sigmoid() }
            acc.backward()
            return xs.map(\.grad.bitPattern)
        }
        #expect(run() == run())
    }

    @Test func sixtyLevelsOfDoublingDifferentiateInstantly() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let x0 = Value(1, on: tape)
        var x = x0
        for _ in 0..<60 { x = x + x }  // 2^60 paths from x to x0, 61 nodes
        x.backward()
        #expect(x.data == 0x1p60)
        #expect(x0.grad == 0x1p60)
        #expect(tape.count == 61)
    }
}
