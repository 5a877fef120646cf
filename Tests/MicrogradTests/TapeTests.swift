#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Micrograd
import Testing

/// The index-level API the HTTP service calls, and the tape's lifetime operations.
@Suite struct TapeTests {
    @Test func indexAPIComputesAndDifferentiates() {
        let tape = Tape(capacity: 4)
        let a = tape.leaf(2), b = tape.leaf(-3), c = tape.leaf(10)
        let m = tape.apply(.mul, a, b)
        let d = tape.apply(.add, m, c)
        let p = tape.apply(.powConst, d, constant: 2)
        #expect(tape.count == 6)
        #expect(tape.data(d) == 4)
        #expect(tape.data(p) == 16)
        #expect(tape.op(p) == .powConst)
        #expect(tape.constant(p) == 2)
        #expect(tape.constant(d) == nil)
        #expect(tape.inputs(a) == (-1, -1))
        #expect(tape.inputs(m) == (a, b))
        #expect(tape.inputs(p) == (d, -1))
        tape.backward(from: p)
        #expect(tape.grad(p) == 1)
        #expect(tape.grad(d) == 8)
        #expect(tape.grad(a) == -24)
        #expect(tape.grad(b) == 16)
        #expect(tape.ancestors(of: m) == [a, b, m])
        #expect(tape.ancestors(of: p) == [a, b, c, m, d, p])
        tape.setData(a, 1)
        #expect(tape.data(a) == 1)
        tape.setGrad(a, 0.5)
        #expect(tape.grad(a) == 0.5)
        tape.zeroGrad()
        #expect((0..<Int32(tape.count)).allSatisfy { tape.grad($0) == 0 })
    }

    @Test func recomputeForwardReevaluatesAfterLeavesChange() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = Value(2, on: tape), y = Value(3, on: tape)
        let out = (x * y + x.pow(2)).tanh() / y
        let expected = { (a: Double, b: Double) in tanh(a * b + a * a) / b }
        #expect(out.data == expected(2, 3))
        x.data = 0.1
        y.data = -0.7
        #expect(out.data == expected(2, 3))  // not recomputed until asked
        tape.recomputeForward()
        #expect(out.data == expected(0.1, -0.7))
    }

    @Test func validityOfApplications() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = tape.leaf(1)
        #expect(tape.isValidApplication(.exp, a))
        #expect(!tape.isValidApplication(.exp, a, a))      // one input only
        #expect(!tape.isValidApplication(.add, a))         // needs two
        #expect(!tape.isValidApplication(.add, a, 1))      // 1 does not exist yet
        #expect(!tape.isValidApplication(.neg, -1))
        #expect(tape.isValidApplication(.add, a, a))
        #expect(tape.isValidApplication(.leaf, -1, -1))
        #expect(!tape.isValidApplication(.leaf, a, -1))
    }

    /// Every op through the index API against closed forms written out here (not through the engine's rules),
    /// at x = 0.75, y = 1.25 (the unary ops use x only; powConst raises to 3).
    @Test func everyOpOfTheIndexAPIMatchesItsClosedForm() {
        let x = 0.75, y = 1.25
        let s = 1 / (1 + exp(-x))
        // op: (value, d/dx, d/dy)
        let expected: [Op: (Double, Double, Double)] = [
            .add: (2, 1, 1),
            .sub: (-0.5, 1, -1),
            .mul: (0.9375, 1.25, 0.75),
            .div: (0.6, 0.8, -0.48),
            .pow: (pow(x, y), y * pow(x, y - 1), pow(x, y) * log(x)),
            .neg: (-0.75, -1, 0),
            .powConst: (0.421875, 1.6875, 0),
            .exp: (exp(x), exp(x), 0),
            .log: (log(x), 1 / x, 0),
            .tanh: (tanh(x), 1 - tanh(x) * tanh(x), 0),
            .relu: (0.75, 1, 0),
            .sigmoid: (s, s * (1 - s), 0),
        ]
        #expect(Set(expected.keys) == Set(Op.allCases.filter { $0 != .leaf }))
        for (op, (value, dx, dy)) in expected {
            let tape = Tape()
            let a = tape.leaf(x), b = tape.leaf(y)
            let out = op.arity == 2 ? tape.apply(op, a, b) : tape.apply(op, a, constant: 3)
            tape.backward(from: out)
            #expect(tape.op(out) == op)
            #expect(close(tape.data(out), value), "\(op) value \(tape.data(out)) vs \(value)")
            #expect(close(tape.grad(a), dx), "\(op) d/dx \(tape.grad(a)) vs \(dx)")
            #expect(close(tape.grad(b), dy), "\(op) d/dy \(tape.grad(b)) vs \(dy)")
        }
    }

    /// Equal to within a few ulps (libm and the engine may order the same arithmetic differently).
    private func close(_ a: Double, _ b: Double) -> Bool {
        a == b || abs(a - b) <= 4 * Double.ulpOfOne * max(abs(a), abs(b))
    }

    @Test func rewindDropsNodesMadeAfterTheMark() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let w = Value(0.5, label: "w", on: tape)
        let mark = tape.count
        let tmp = (w * 3).pow(2)
        tmp.label = "tmp"
        #expect(tape.count == mark + 3)
        tape.rewind(to: mark)
        #expect(tape.count == mark)
        #expect(w.data == 0.5 && w.label == "w")
        // Indices are reused; dropped labels and constants do not leak into the new nodes.
        let again = w.exp()
        #expect(again.index == Int32(mark))
        #expect(again.label == nil)
        let power = w.pow(5)
        #expect(power.constant == 5)
        #expect(power.data == 0.5 * 0.5 * 0.5 * 0.5 * 0.5)
    }

    @Test func scopedDropsTheBodysNodesAndReturnsItsResult() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let w = Value(2, on: tape)
        let before = tape.count
        let result = tape.scoped { () -> Double in
            let loss = (w * w + 1).log()
            loss.backward()
            return loss.data
        }
        #expect(result == log(5.0))
        #expect(tape.count == before)
        #expect(w.grad == 0.8)  // gradients of surviving nodes stay
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try tape.scoped { () throws(Failure) -> Void in
                _ = w * 3
                throw Failure()
            }
        }
        #expect(tape.count == before)
    }

    @Test func removeAllEmptiesTheTape() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        for i in 0..<5000 { _ = tape.leaf(Double(i)) }
        #expect(tape.capacity >= 5000)
        tape.removeAll()
        #expect(tape.count == 0 && tape.capacity >= 5000)
        _ = tape.leaf(1)
        tape.removeAll(keepingCapacity: false)
        #expect(tape.count == 0 && tape.capacity == 0)
        let a = tape.leaf(3)
        #expect(tape.data(a) == 3)
        tape.reserveCapacity(10)
        #expect(tape.capacity >= 10)
    }

    @Test func eachThreadHasItsOwnCurrentTape() {
        // Values made on this thread land on this thread's tape, and only there.
        let (mineBefore, mineAfter) = onNewThread(stackBytes: 1 << 20) { () -> (Int, Int) in
            let before = Tape.current.count
            _ = Value(1) * Value(2)
            return (before, Tape.current.count)
        }
        #expect(mineBefore == 0 && mineAfter == 3)
        let (countBefore, otherCount, countAfter) = onNewThread(stackBytes: 1 << 20) { () -> (Int, Int, Int) in
            let here = Tape.current
            _ = Value(5)
            let before = here.count
            let other = onNewThread(stackBytes: 1 << 20) { () -> Int in
                _ = Value(1) + Value(2)
                return Tape.current.count
            }
            return (before, other, here.count)
        }
        #expect(countBefore == 1)
        #expect(otherCount == 3, "a new thread starts with an empty tape")
        #expect(countAfter == 1, "another thread's values must not land on this thread's tape")
    }

    @Test func invalidIndexTraps() async {
        await #expect(processExitsWith: .failure) {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            _ = tape.data(0)
        }
        await #expect(processExitsWith: .failure) {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let a = tape.leaf(1)
            _ = tape.apply(.add, a, 7)
        }
        await #expect(processExitsWith: .failure) {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let stale = Value(1, on: tape)
            tape.rewind(to: 0)
            _ = stale.data
        }
        await #expect(processExitsWith: .failure) {
            let one = Tape(), two = Tape()
            withExtendedLifetime((one, two)) { _ = Value(1, on: one) + Value(2, on: two) }
        }
        await #expect(processExitsWith: .failure) {
            // A value that outlives its tape traps (the emptied header is kept), never reads freed memory.
            var tape: Tape? = Tape()
            let orphan = Value(1, on: tape!)
            tape = nil
            _ = orphan.data
        }
    }
}
