// micrograd's operators. A `Double` operand becomes a leaf on the other operand's tape, as micrograd
// wraps a number in `Value(other)`. The forward and derivative rules themselves are in `Rules`.

extension Value {
    @inlinable @inline(__always)
    static func binary(_ op: Op, _ l: Value, _ r: Value) -> Value {
        if _slowPath(l.handle != r.handle) { mixedTapes() }
        return Value(l.handle, l.handle.apply(op, l.index, r.index, constant: 0))
    }

    @inlinable @inline(__always)
    func unary(_ op: Op, constant: Double = 0) -> Value {
        Value(handle, handle.apply(op, index, -1, constant: constant))
    }

    /// A leaf holding `x` on this value's tape.
    @inlinable @inline(__always)
    func leafOnSameTape(_ x: Double) -> Value { Value(handle, handle.leaf(x)) }

    @usableFromInline @inline(never)
    static func mixedTapes() -> Never { preconditionFailure("Values from different tapes cannot be combined") }

    @inlinable public static func + (l: Value, r: Value) -> Value { binary(.add, l, r) }
    @inlinable public static func + (l: Value, r: Double) -> Value { binary(.add, l, l.leafOnSameTape(r)) }
    @inlinable public static func + (l: Double, r: Value) -> Value { binary(.add, r.leafOnSameTape(l), r) }

    @inlinable public static func - (l: Value, r: Value) -> Value { binary(.sub, l, r) }
    @inlinable public static func - (l: Value, r: Double) -> Value { binary(.sub, l, l.leafOnSameTape(r)) }
    @inlinable public static func - (l: Double, r: Value) -> Value { binary(.sub, r.leafOnSameTape(l), r) }

    @inlinable public static func * (l: Value, r: Value) -> Value { binary(.mul, l, r) }
    @inlinable public static func * (l: Value, r: Double) -> Value { binary(.mul, l, l.leafOnSameTape(r)) }
    @inlinable public static func * (l: Double, r: Value) -> Value { binary(.mul, r.leafOnSameTape(l), r) }

    @inlinable public static func / (l: Value, r: Value) -> Value { binary(.div, l, r) }
    @inlinable public static func / (l: Value, r: Double) -> Value { binary(.div, l, l.leafOnSameTape(r)) }
    @inlinable public static func / (l: Double, r: Value) -> Value { binary(.div, r.leafOnSameTape(l), r) }

    @inlinable public static prefix func - (x: Value) -> Value { x.unary(.neg) }

    @inlinable public static func += (l: inout Value, r: Value) { l = l + r }
    @inlinable public static func += (l: inout Value, r: Double) { l = l + r }
    @inlinable public static func -= (l: inout Value, r: Value) { l = l - r }
    @inlinable public static func -= (l: inout Value, r: Double) { l = l - r }
    @inlinable public static func *= (l: inout Value, r: Value) { l = l * r }
    @inlinable public static func *= (l: inout Value, r: Double) { l = l * r }
    @inlinable public static func /= (l: inout Value, r: Value) { l = l / r }
    @inlinable public static func /= (l: inout Value, r: Double) { l = l / r }

    /// `self ** exponent` with a constant exponent (micrograd's `__pow__`): no gradient flows to the exponent.
    @inlinable public func pow(_ exponent: Double) -> Value { unary(.powConst, constant: exponent) }
    /// `self ** exponent` with a value exponent: gradient flows to both (d/db a^b = a^b ln a).
    @inlinable public func pow(_ exponent: Value) -> Value { Value.binary(.pow, self, exponent) }

    @inlinable public func exp() -> Value { unary(.exp) }
    @inlinable public func log() -> Value { unary(.log) }
    @inlinable public func tanh() -> Value { unary(.tanh) }
    /// max(0, x), with relu'(0) = 0.
    @inlinable public func relu() -> Value { unary(.relu) }
    @inlinable public func sigmoid() -> Value { unary(.sigmoid) }
}

/// `base ** exponent` for a number base and a value exponent (the number becomes a leaf).
@inlinable public func pow(_ base: Double, _ exponent: Value) -> Value { exponent.leafOnSameTape(base).pow(exponent) }
