/// The operation that produced a node. A leaf holds data given by the caller; every other
/// op computes its data from its inputs (forward) and knows its local derivatives (backward).
public enum Op: UInt8, Sendable, CaseIterable {
    case leaf
    case add, sub, mul, div
    case neg
    /// `a ** c` with a constant exponent `c` (micrograd's `__pow__`): one input, no gradient to `c`.
    case powConst
    /// `a ** b` with both sides values: gradient to both (d/db a^b = a^b ln a).
    case pow
    case exp, log, tanh, relu, sigmoid

    /// The name used on the wire (JSON `op`). Both pow forms are "pow".
    public var name: String { staticName.description }

    /// micrograd's `_op` string, as drawn in its graphs.
    public var symbol: String { staticSymbol.description }

    /// `name` as a StaticString, for writers that copy its bytes without making a String.
    public var staticName: StaticString {
        switch self {
        case .leaf: "leaf"
        case .add: "add"
        case .sub: "sub"
        case .mul: "mul"
        case .div: "div"
        case .neg: "neg"
        case .powConst, .pow: "pow"
        case .exp: "exp"
        case .log: "log"
        case .tanh: "tanh"
        case .relu: "relu"
        case .sigmoid: "sigmoid"
        }
    }

    /// `symbol` as a StaticString.
    public var staticSymbol: StaticString {
        switch self {
        case .leaf: ""
        case .add: "+"
        case .sub: "-"
        case .mul: "*"
        case .div: "/"
        case .neg: "neg"
        case .powConst, .pow: "**"
        case .exp: "exp"
        case .log: "log"
        case .tanh: "tanh"
        case .relu: "ReLU"
        case .sigmoid: "sigmoid"
        }
    }

    /// How many value inputs the op takes (a `powConst` exponent is a constant, not an input).
    public var arity: Int {
        switch self {
        case .leaf: 0
        case .neg, .powConst, .exp, .log, .tanh, .relu, .sigmoid: 1
        case .add, .sub, .mul, .div, .pow: 2
        }
    }
}
