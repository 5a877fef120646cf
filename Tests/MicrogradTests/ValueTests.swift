import Testing
import Micrograd

@Suite struct ValueTests {
    @Test func seedExample() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(2.0, label: "a", on: tape), b = Value(-3.0, label: "b", on: tape), c = Value(10.0, label: "c", on: tape)
        let d = a * b + c
        #expect(d.data == 4)
        #expect("\(d)" == "Value(data=4.0)")
        d.backward()
        #expect(a.grad == -3)
        #expect(b.grad == 2)
        #expect(c.grad == 1)
        #expect(d.grad == 1)
        #expect(d.op == .add)
        #expect(d.inputs.map(\.op) == [.mul, .leaf])
        #expect(d.inputs[0].inputs == [a, b])
        #expect(a.inputs.isEmpty)
        #expect(a.label == "a")
        #expect(d.label == nil)
    }

    @Test func printsLikeMicrograd() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        #expect("\(Value(4, on: tape))" == "Value(data=4.0)")
        #expect("\(Value(-0.5, on: tape))" == "Value(data=-0.5)")
        #expect(String(describing: Value(1e-7, on: tape)) == "Value(data=1e-07)")
    }

    @Test func currentTapeIsUsedByDefault() {
        Tape.current.scoped {
            let before = Tape.current.count
            let a = Value(2.0)
            let b = 2 * a + 1
            #expect(b.data == 5)
            #expect(Tape.current.count == before + 5)  // a, the leaf 2, mul, the leaf 1, add
            #expect(b.tape === Tape.current)
        }
    }

    @Test func numbersOnEitherSideBecomeLeaves() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(3, on: tape)
        #expect((a + 1).data == 4)
        #expect((1 + a).data == 4)
        #expect((a - 1).data == 2)
        #expect((1 - a).data == -2)
        #expect((2 * a).data == 6)
        #expect((a * 2).data == 6)
        #expect((a / 3).data == 1)
        #expect((6 / a).data == 2)
        #expect((-a).data == -3)
        #expect(a.pow(2).data == 9)
        #expect(a.pow(Value(2, on: tape)).data == 9)
        #expect(pow(2, a).data == 8)
        let s = 1 - a
        #expect(s.op == .sub)
        #expect(s.inputs[0].op == .leaf && s.inputs[0].data == 1)
        #expect(s.inputs[1] == a)
        var acc = a
        acc += 1
        acc *= 2
        acc -= a
        acc /= 5
        #expect(acc.data == 1)
    }

    @Test func inputsKeepOrderAndMultiplicity() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(5, on: tape), b = Value(2, on: tape)
        #expect((a - b).inputs == [a, b])
        #expect((b - a).inputs == [b, a])
        #expect((a + a).inputs == [a, a])
        #expect((a / b).inputs == [a, b])
        #expect(a.pow(3).inputs == [a])
        #expect(a.pow(3).constant == 3)
        #expect(a.pow(b).inputs == [a, b])
        #expect(a.pow(b).constant == nil)
        #expect(a.relu().op == .relu)
    }

    @Test func dataAndGradCanBeSet() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(1, on: tape)
        a.data = 7
        a.grad = 0.5
        #expect(a.data == 7)
        #expect(a.grad == 0.5)
        a.label = "seven"
        #expect(a.label == "seven")
        a.label = nil
        #expect(a.label == nil)
    }

    @Test func topologicalOrderPutsInputsFirst() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(1, on: tape), b = Value(2, on: tape)
        let unrelated = Value(9, on: tape)
        let c = a * b
        let d = c + a
        let order = d.topologicalOrder()
        #expect(order == [a, b, c, d])
        #expect(!order.contains(unrelated))
        for (position, v) in order.enumerated() {
            for input in v.inputs { #expect(order.firstIndex(of: input)! < position) }
        }
    }

    @Test func handlesAreHashable() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = Value(1, on: tape)
        let set: Set<Value> = [a, Value(index: a.index, on: tape), Value(1, on: tape)]
        #expect(set.count == 2)
        #expect(Value(index: 0, on: tape) == a)
    }
}
