/// micrograd's nn.py: neurons, layers and a multi-layer perceptron built from ``Value``s.
///
/// Parameters are leaves made when the model is made, so they sit below any per-step mark on their tape:
/// build each step's graph inside ``Tape/scoped(_:)`` and only the step is dropped (see ``Tape``).

/// Anything with trainable parameters.
public protocol Module {
    /// The trainable parameters, in a fixed order.
    func parameters() -> [Value]
}

extension Module {
    /// Sets every parameter's grad to 0 (micrograd's `zero_grad`).
    public func zeroGrad() {
        for p in parameters() { p.grad = 0 }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, well-mixed generator, so that initialisation from a
/// seed gives the same parameters on every platform and Swift version (the standard library's generator is
/// not seedable).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double uniformly distributed in `[low, high)`, from the top 53 bits of the next output.
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        let unit = Double(next() >> 11) * 0x1p-53
        return low + (high - low) * unit
    }
}

/// One neuron: `relu(b + Σ wᵢxᵢ)`, or linear when `nonlinear` is false.
public struct Neuron: Module {
    public let weights: [Value]
    public let bias: Value
    public let nonlinear: Bool

    /// Weights uniform in [-1, 1) from `rng`, bias 0, as in micrograd.
    public init(inputs: Int, nonlinear: Bool = true, rng: inout SplitMix64, on tape: Tape = .current) {
        precondition(inputs > 0, "A neuron needs at least one input")
        weights = (0..<inputs).map { _ in Value(rng.uniform(-1, 1), on: tape) }
        bias = Value(0, on: tape)
        self.nonlinear = nonlinear
    }

    /// `b + w₀x₀ + w₁x₁ + ...`, summed left to right as micrograd's `sum(..., self.b)` does.
    @inlinable
    public func callAsFunction(_ x: [Value]) -> Value {
        precondition(x.count == weights.count, "Neuron expects \(weights.count) inputs, got \(x.count)")
        var act = bias
        for (w, xi) in zip(weights, x) { act = act + w * xi }
        return nonlinear ? act.relu() : act
    }

    public func parameters() -> [Value] { weights + [bias] }
}

/// A fully connected layer of neurons sharing the same inputs.
public struct Layer: Module {
    public let neurons: [Neuron]

    public init(inputs: Int, outputs: Int, nonlinear: Bool = true, rng: inout SplitMix64, on tape: Tape = .current) {
        precondition(outputs > 0, "A layer needs at least one neuron")
        var made: [Neuron] = []
        made.reserveCapacity(outputs)
        for _ in 0..<outputs { made.append(Neuron(inputs: inputs, nonlinear: nonlinear, rng: &rng, on: tape)) }
        neurons = made
    }

    @inlinable
    public func callAsFunction(_ x: [Value]) -> [Value] { neurons.map { $0(x) } }

    public func parameters() -> [Value] { neurons.flatMap { $0.parameters() } }
}

/// A multi-layer perceptron: ReLU hidden layers, a linear last layer (micrograd's `MLP(nin, nouts)`).
public struct MLP: Module {
    public let layers: [Layer]

    /// `MLP(2, [16, 16, 1], seed: 1)`: 2 inputs, two hidden layers of 16, one output. Same seed, same parameters.
    public init(_ inputs: Int, _ outputs: [Int], seed: UInt64, on tape: Tape = .current) {
        precondition(!outputs.isEmpty, "An MLP needs at least one layer")
        var rng = SplitMix64(seed: seed)
        let sizes = [inputs] + outputs
        layers = (0..<outputs.count).map { i in
            Layer(inputs: sizes[i], outputs: sizes[i + 1], nonlinear: i != outputs.count - 1, rng: &rng, on: tape)
        }
    }

    /// The outputs of the last layer for inputs `x`.
    @inlinable
    public func callAsFunction(_ x: [Value]) -> [Value] {
        var activations = x
        for layer in layers { activations = layer(activations) }
        return activations
    }

    /// The outputs for plain numbers (each becomes a leaf on the model's tape).
    public func callAsFunction(_ x: [Double]) -> [Value] {
        let tape = layers[0].neurons[0].bias.tape
        return self(x.map { Value($0, on: tape) })
    }

    public func parameters() -> [Value] { layers.flatMap { $0.parameters() } }
}
