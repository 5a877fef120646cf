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
/// ``Elementary/tanh(_:)`` clamps its argument (tanh(±1000) = ±1, where micrograd's `(e^2x - 1)/(e^2x + 1)`
/// gives NaN), and the sigmoid only ever exponentiates a non-positive number.
@usableFromInline
enum Rules {
    /// The value of `op` applied to `x` (and `y`, or the constant `c`). `V` is `Double` for the single-row
    /// engine and ``BatchVector`` for the batched one: the same rule, the same bits.
    @inlinable @inline(__always)
    static func forward<V: Lanes>(_ op: Op, _ x: V, _ y: V, _ c: Double) -> V {
        switch op {
        case .leaf: x
        case .add: x + y
        case .sub: x - y
        case .mul: x * y
        case .div: x / y
        case .neg: -x
        case .powConst: x.lanewise { Rules.power($0, c) }
        case .pow: x.lanewise(y, Rules.power)
        case .exp: x.lanewise(Rules.exponential)
        case .log: x.lanewise(Rules.logarithm)
        case .tanh: Elementary.tanh(x)
        case .relu: V.select(V.less(x, V(0)), V(0), x)
        case .sigmoid: x.lanewise(Rules.logistic)
        }
    }

    /// The local derivatives `(d out/dx, d out/dy)` of a node whose inputs were `x`, `y` and whose value is `out`.
    /// `dy` is 0 for ops with one input.
    @inlinable @inline(__always)
    static func derivatives<V: Lanes>(_ op: Op, _ x: V, _ y: V, _ out: V, _ c: Double) -> (dx: V, dy: V) {
        switch op {
        case .leaf: (V(0), V(0))
        case .add: (V(1), V(1))
        case .sub: (V(1), V(-1))
        case .mul: (y, x)
        case .div: (V(1) / y, -(out / y))
        case .neg: (V(-1), V(0))
        case .powConst: (c == 0 ? V(0) : V(c) * x.lanewise { Rules.power($0, c - 1) }, V(0))
        case .pow:
            (V.select(V.equal(y, V(0)), V(0), y * x.lanewise(y - V(1), Rules.power)),
             V.select(V.and(V.equal(x, V(0)), V.greaterOrEqual(y, V(0))), V(0), out * x.lanewise(Rules.logarithm)))
        case .exp: (out, V(0))
        case .log: (V(1) / x, V(0))
        case .tanh: (V(1) - out * out, V(0))
        case .relu: (V.select(V.greater(out, V(0)), V(1), V(0)), V(0))
        case .sigmoid: (out * (V(1) - out), V(0))
        }
    }

    // libm wrappers, named so they do not collide with the `Op` cases inside the switches above.
    @inlinable @inline(__always) static func power(_ x: Double, _ y: Double) -> Double { pow(x, y) }
    @inlinable @inline(__always) static func exponential(_ x: Double) -> Double { exp(x) }
    @inlinable @inline(__always) static func logarithm(_ x: Double) -> Double { log(x) }

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
