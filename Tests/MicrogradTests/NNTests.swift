import Testing
import Micrograd

@Suite struct NNTests {
    @Test func splitMixIsTheReferenceSequence() {
        // First outputs of SplitMix64 seeded with 1234567 (from the reference C implementation by Vigna).
        var rng = SplitMix64(seed: 1_234_567)
        #expect(rng.next() == 6_457_827_717_110_365_317)
        #expect(rng.next() == 3_203_168_211_198_807_973)
        var u = SplitMix64(seed: 9)
        for _ in 0..<1000 {
            let x = u.uniform(-1, 1)
            #expect(x >= -1 && x < 1)
        }
    }

    @Test func mlpShapeAndDeterministicInitialisation() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let a = MLP(2, [16, 16, 1], seed: 7, on: tape)
        let b = MLP(2, [16, 16, 1], seed: 7, on: tape)
        let c = MLP(2, [16, 16, 1], seed: 8, on: tape)
        #expect(a.parameters().count == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1)
        #expect(a.parameters().map(\.data) == b.parameters().map(\.data))
        #expect(a.parameters().map(\.data) != c.parameters().map(\.data))
        #expect(a.layers.map { $0.neurons.count } == [16, 16, 1])
        #expect(a.layers.map { $0.neurons[0].nonlinear } == [true, true, false])
        #expect(a.parameters().allSatisfy { $0.op == .leaf })
        #expect(a.layers[0].neurons[0].bias.data == 0)
    }

    @Test func neuronComputesReluOfAffineSum() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        var rng = SplitMix64(seed: 3)
        let n = Neuron(inputs: 2, rng: &rng, on: tape)
        n.weights[0].data = 2
        n.weights[1].data = -1
        n.bias.data = 0.5
        let x = [Value(1, on: tape), Value(3, on: tape)]
        #expect(n(x).data == 0)     // relu(2 - 3 + 0.5)
        n.bias.data = 1.5
        #expect(n(x).data == 0.5)
        let linear = Neuron(inputs: 2, nonlinear: false, rng: &rng, on: tape)
        linear.weights[0].data = 1
        linear.weights[1].data = -1
        #expect(linear(x).data == -2)
    }

    /// A seeded, linearly separable dataset: label = sign(x0 - 0.5 x1 + 0.1), points within 0.15 of the
    /// boundary rejected so that a margin exists.
    static func dataset(seed: UInt64, count: Int) -> (x: [[Double]], y: [Double]) {
        var rng = SplitMix64(seed: seed)
        var xs: [[Double]] = [], ys: [Double] = []
        while xs.count < count {
            let p = [rng.uniform(-2, 2), rng.uniform(-2, 2)]
            let s = p[0] - 0.5 * p[1] + 0.1
            if abs(s) < 0.15 { continue }
            xs.append(p)
            ys.append(s > 0 ? 1 : -1)
        }
        return (xs, ys)
    }

    @Test func sgdTrainsToFullAccuracyWithFlatMemory() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let (xs, ys) = Self.dataset(seed: 2024, count: 40)
        #expect(Set(ys) == [1, -1])
        let model = MLP(2, [8, 8, 1], seed: 11, on: tape)
        let parameterCount = tape.count
        var countsAfterSteps: [Int] = []
        var capacityAfterFirstStep = 0
        var accuracy = 0.0
        var losses: [Double] = []
        for step in 0..<300 {
            let (loss, correct) = tape.scoped { () -> (Double, Int) in
                var total = Value(0, on: tape)
                var correct = 0
                for (x, y) in zip(xs, ys) {
                    let score = model(x)[0]
                    if (score.data > 0) == (y > 0) { correct += 1 }
                    total = total + (1 - y * score).relu()  // SVM max-margin loss
                }
                var regularisation = Value(0, on: tape)
                for p in model.parameters() { regularisation = regularisation + p * p }
                let loss = total / Double(xs.count) + 1e-4 * regularisation
                model.zeroGrad()
                loss.backward()
                let rate = 1.0 - 0.9 * Double(step) / 300
                for p in model.parameters() { p.data -= 0.1 * rate * p.grad }
                return (loss.data, correct)
            }
            losses.append(loss)
            countsAfterSteps.append(tape.count)
            if step == 0 { capacityAfterFirstStep = tape.capacity }
            accuracy = Double(correct) / Double(xs.count)
            if accuracy == 1 && step >= 10 { break }
        }
        #expect(accuracy == 1, "accuracy \(accuracy) after \(losses.count) steps, last loss \(losses.last ?? .nan)")
        #expect(losses.last! < losses.first!)
        // Memory does not grow step after step: only the parameters stay on the tape.
        #expect(countsAfterSteps.allSatisfy { $0 == parameterCount })
        #expect(tape.capacity == capacityAfterFirstStep)
    }

    @Test func mlpOnDoublesMatchesMLPOnLeaves() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }  // values do not keep their tape alive
        let model = MLP(3, [4, 2], seed: 5, on: tape)
        let a = model([0.5, -1, 2]).map(\.data)
        let b = model([Value(0.5, on: tape), Value(-1, on: tape), Value(2, on: tape)]).map(\.data)
        #expect(a == b)
        #expect(a.count == 2)
    }
}
