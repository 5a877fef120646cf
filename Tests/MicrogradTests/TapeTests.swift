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

    @Test func everyOpOfTheIndexAPIMatchesTheValueAPI() {
        for op in Op.allCases where op != .leaf {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
            let x = tape.leaf(0.75), y = tape.leaf(1.25)
            let out = op.arity == 2 ? tape.apply(op, x, y) : tape.apply(op, x, constant: 3)
            tape.backward(from: out)
            let other = Tape()
            defer { withExtendedLifetime(other) {} }
            let vx = Value(0.75, on: other), vy = Value(1.25, on: other)
            let v: Value = switch op {
            case .add: vx + vy
            case .sub: vx - vy
            case .mul: vx * vy
            case .div: vx / vy
            case .pow: vx.pow(vy)
            case .neg: -vx
            case .powConst: vx.pow(3)
            case .exp: vx.exp()
            case .log: vx.log()
            case .tanh: vx.tanh()
            case .relu: vx.relu()
            case .sigmoid: vx.sigmoid()
            case .leaf: vx
            }
            v.backward()
            #expect(v.op == op)
            #expect(tape.data(out) == v.data, "\(op)")
            #expect(tape.grad(x) == vx.grad, "\(op)")
            #expect(tape.grad(y) == vy.grad, "\(op)")
        }
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
        let mine = ObjectIdentifier(Tape.current)
        #expect(ObjectIdentifier(Tape.current) == mine)
        let (other, count) = onNewThread(stackBytes: 1 << 20) { () -> (ObjectIdentifier, Int) in
            let t = Tape.current
            _ = Value(1) + Value(2)
            return (ObjectIdentifier(t), t.count)
        }
        #expect(other != mine)
        #expect(count == 3)
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
