import Testing
@testable import Micrograd

@Suite struct ValueTests {
    @Test func seedExample() {
        let tape = Tape()
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
        #expect(a.label == "a")
        #expect(d.label == nil)
    }

    @Test func currentTapeIsUsedByDefault() {
        Tape.current.scoped {
            let before = Tape.current.count
            let a = Value(2.0)
            let b = 2 * a + 1
            #expect(b.data == 5)
            #expect(Tape.current.count == before + 5)  // a, the leaf 2, mul, the leaf 1, add
            #expect(b.onTape === Tape.current)
        }
    }
}
