#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The calculus of every op, in one place (micrograd's engine.py, as a table).
///
/// For a node `out = op(x, y)` (`y` is absent for unary ops, `c` is the constant exponent of `powConst`):
///
///     op         forward                      d out/dx                      d out/dy
///     add        x + y                        1                             1
///     sub        x - y                        1                             -1
///     mul        x * y                        y                             x
///     div        x / y                        1 / y                         -(x / y) / y
///     neg        -x                           -1
///     powConst   x ** c                       c * x ** (c - 1)   (0 if c == 0)
///     pow        x ** y                       y * x ** (y - 1)   (0 if y == 0)   out * ln x  (0 if x == 0 and y >= 0)
///     exp        e ** x                       out
///     log        ln x                         1 / x
///     tanh       tanh x                       1 - out ** 2
///     relu       x < 0 ? 0 : x                out > 0 ? 1 : 0   (relu'(0) = 0)
///     sigmoid    1 / (1 + e ** -x)            out * (1 - out)
///
/// Semantics are IEEE-754, like PyTorch: log(0) = -inf, 1/0 = inf, log(-1) = NaN, nothing traps.
/// The zero masks in the pow rows are PyTorch's (`pow_backward`): they keep `0 * inf` from turning a
/// gradient that is mathematically 0 into NaN. `tanh` and `sigmoid` use forms that cannot overflow:
/// libm's `tanh` (tanh(±1000) = ±1, where micrograd's `(e^2x - 1)/(e^2x + 1)` gives NaN) and a
/// sigmoid that only ever exponentiates a non-positive number.
@usableFromInline
enum Rules {
    /// The value of `op` applied to `x` (and `y`, or the constant `c`).
    @inlinable @inline(__always)
    static func forward(_ op: Op, _ x: Double, _ y: Double, _ c: Double) -> Double {
        switch op {
        case .leaf: x
        case .add: x + y
        case .sub: x - y
        case .mul: x * y
        case .div: x / y
        case .neg: -x
        case .powConst: Rules.power(x, c)
        case .pow: Rules.power(x, y)
        case .exp: Rules.exponential(x)
        case .log: Rules.logarithm(x)
        case .tanh: Rules.hyperbolicTangent(x)
        case .relu: x < 0 ? 0 : x
        case .sigmoid: Rules.logistic(x)
        }
    }

    /// The local derivatives `(d out/dx, d out/dy)` of a node whose inputs were `x`, `y` and whose value is `out`.
    /// `dy` is 0 for ops with one input.
    @inlinable @inline(__always)
    static func derivatives(_ op: Op, _ x: Double, _ y: Double, _ out: Double, _ c: Double) -> (dx: Double, dy: Double) {
        switch op {
        case .leaf: (0, 0)
        case .add: (1, 1)
        case .sub: (1, -1)
        case .mul: (y, x)
        case .div: (1 / y, -(out / y))
        case .neg: (-1, 0)
        case .powConst: (c == 0 ? 0 : c * Rules.power(x, c - 1), 0)
        case .pow: (y == 0 ? 0 : y * Rules.power(x, y - 1), x == 0 && y >= 0 ? 0 : out * Rules.logarithm(x))
        case .exp: (out, 0)
        case .log: (1 / x, 0)
        case .tanh: (1 - out * out, 0)
        case .relu: (out > 0 ? 1 : 0, 0)
        case .sigmoid: (out * (1 - out), 0)
        }
    }

    // libm wrappers, named so they do not collide with the `Op` cases inside the switches above.
    @inlinable @inline(__always) static func power(_ x: Double, _ y: Double) -> Double { pow(x, y) }
    @inlinable @inline(__always) static func exponential(_ x: Double) -> Double { exp(x) }
    @inlinable @inline(__always) static func logarithm(_ x: Double) -> Double { log(x) }
    @inlinable @inline(__always) static func hyperbolicTangent(_ x: Double) -> Double { tanh(x) }

    /// sigmoid without overflow on either side: exp is only taken of -|x|.
    @inlinable @inline(__always)
    static func logistic(_ x: Double) -> Double {
        if x >= 0 {
            return 1 / (1 + exp(-x))
        }
        let e = exp(x)  // x < 0 (or NaN, which propagates)
        return e / (1 + e)
    }
}
