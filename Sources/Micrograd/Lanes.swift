#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What ``Rules`` computes with: one `Double` (the single-row engine) or ``BatchVector``, eight rows at once
/// (the batched evaluator). Each rule is written once, generic over this protocol, so both paths run the same
/// IEEE-754 operations in the same order: row r of a batch is bit-for-bit the single-row result.
///
/// Only basic arithmetic, comparisons and selects are vector operations. `exp`, `log`, `pow` and the
/// sigmoid go through libm one lane at a time (``lanewise(_:)``), so they are libm's results on both paths;
/// `tanh` is ``Elementary/tanh(_:)``, written over this protocol so that it vectorises.
@usableFromInline
protocol Lanes {
    associatedtype Mask
    init(_ scalar: Double)
    static func + (l: Self, r: Self) -> Self
    static func - (l: Self, r: Self) -> Self
    static func * (l: Self, r: Self) -> Self
    static func / (l: Self, r: Self) -> Self
    static prefix func - (x: Self) -> Self
    static func less(_ l: Self, _ r: Self) -> Mask
    static func greater(_ l: Self, _ r: Self) -> Mask
    static func greaterOrEqual(_ l: Self, _ r: Self) -> Mask
    static func equal(_ l: Self, _ r: Self) -> Mask
    static func and(_ l: Mask, _ r: Mask) -> Mask
    /// Whether every lane of the mask is set.
    static func all(_ mask: Mask) -> Bool
    /// Lanes whose sign bit is set (-0 included): `a - b` negative says a < b where the difference cannot be -0.
    /// (Vector float comparisons build their mask lane by lane in Swift 6.3; this is two integer operations.)
    static func signBitSet(_ x: Self) -> Mask
    static func isNaN(_ x: Self) -> Mask
    /// `mask ? yes : no`, lane by lane.
    static func select(_ mask: Mask, _ yes: Self, _ no: Self) -> Self
    /// |x| (clears the sign bit).
    var magnitude: Self { get }
    /// `magnitude` with the sign bit of `sign`.
    func withSign(of sign: Self) -> Self
    /// 2^n for `k = n + 0x1.8p52` with n an integer in [-1022, 1023] (the round-to-integer trick's sum).
    static func powerOfTwo(roundingSum k: Self) -> Self
    /// `f` applied to each lane (libm functions).
    func lanewise(_ f: (Double) -> Double) -> Self
    func lanewise(_ other: Self, _ f: (Double, Double) -> Double) -> Self
}

extension Double: Lanes {
    @inlinable @inline(__always) static func less(_ l: Double, _ r: Double) -> Bool { l < r }
    @inlinable @inline(__always) static func greater(_ l: Double, _ r: Double) -> Bool { l > r }
    @inlinable @inline(__always) static func greaterOrEqual(_ l: Double, _ r: Double) -> Bool { l >= r }
    @inlinable @inline(__always) static func equal(_ l: Double, _ r: Double) -> Bool { l == r }
    @inlinable @inline(__always) static func and(_ l: Bool, _ r: Bool) -> Bool { l && r }
    @inlinable @inline(__always) static func all(_ mask: Bool) -> Bool { mask }
    @inlinable @inline(__always) static func signBitSet(_ x: Double) -> Bool { x.sign == .minus }
    @inlinable @inline(__always) static func isNaN(_ x: Double) -> Bool { x.isNaN }
    @inlinable @inline(__always) static func select(_ mask: Bool, _ yes: Double, _ no: Double) -> Double { mask ? yes : no }
    @inlinable @inline(__always) func withSign(of sign: Double) -> Double {
        Double(bitPattern: bitPattern & ~(1 << 63) | sign.bitPattern & (1 << 63))
    }
    @inlinable @inline(__always) static func powerOfTwo(roundingSum k: Double) -> Double {
        Double(bitPattern: (k.bitPattern &+ 1023) &<< 52)
    }
    @inlinable @inline(__always) func lanewise(_ f: (Double) -> Double) -> Double { f(self) }
    @inlinable @inline(__always) func lanewise(_ other: Double, _ f: (Double, Double) -> Double) -> Double { f(self, other) }
}

/// Eight rows of one node: the batched evaluator's unit of work.
@usableFromInline
typealias BatchVector = SIMD8<Double>

extension SIMD8: Lanes where Scalar == Double {
    @usableFromInline typealias Bits = SIMD8<UInt64>

    @inlinable @inline(__always) var bits: Bits { unsafeBitCast(self, to: Bits.self) }
    @inlinable @inline(__always) init(bits: Bits) { self = unsafeBitCast(bits, to: SIMD8<Double>.self) }

    @inlinable @inline(__always) init(_ scalar: Double) { self.init(repeating: scalar) }
    @inlinable @inline(__always) static prefix func - (x: SIMD8<Double>) -> SIMD8<Double> { SIMD8(bits: x.bits ^ Bits(repeating: 1 << 63)) }
    @inlinable @inline(__always) static func less(_ l: Self, _ r: Self) -> Bits { unsafeBitCast((l .< r)._storage, to: Bits.self) }
    @inlinable @inline(__always) static func greater(_ l: Self, _ r: Self) -> Bits { unsafeBitCast((l .> r)._storage, to: Bits.self) }
    @inlinable @inline(__always) static func greaterOrEqual(_ l: Self, _ r: Self) -> Bits { unsafeBitCast((l .>= r)._storage, to: Bits.self) }
    @inlinable @inline(__always) static func equal(_ l: Self, _ r: Self) -> Bits { unsafeBitCast((l .== r)._storage, to: Bits.self) }
    @inlinable @inline(__always) static func and(_ l: Bits, _ r: Bits) -> Bits { l & r }
    @inlinable @inline(__always) static func all(_ mask: Bits) -> Bool {
        Swift.all(unsafeBitCast(mask, to: SIMDMask<SIMD8<Int64>>.self))
    }
    @inlinable @inline(__always) static func signBitSet(_ x: Self) -> Bits {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<Int64>.self) &>> SIMD8<Int64>(repeating: 63), to: Bits.self)
    }
    @inlinable @inline(__always) static func isNaN(_ x: Self) -> Bits {
        // |x| above infinity's bit pattern: the difference goes negative (no overflow: both below 2^63).
        let magnitude = unsafeBitCast(x.magnitude, to: SIMD8<Int64>.self)
        return unsafeBitCast((SIMD8<Int64>(repeating: 0x7FF0_0000_0000_0000) &- magnitude) &>> SIMD8<Int64>(repeating: 63),
                             to: Bits.self)
    }
    @inlinable @inline(__always) static func select(_ mask: Bits, _ yes: Self, _ no: Self) -> Self {
        SIMD8(bits: yes.bits & mask | no.bits & ~mask)
    }
    @inlinable @inline(__always) var magnitude: Self { SIMD8(bits: bits & Bits(repeating: ~(1 << 63))) }
    @inlinable @inline(__always) func withSign(of sign: Self) -> Self {
        SIMD8(bits: bits & Bits(repeating: ~(1 << 63)) | sign.bits & Bits(repeating: 1 << 63))
    }
    @inlinable @inline(__always) static func powerOfTwo(roundingSum k: Self) -> Self {
        SIMD8(bits: (k.bits &+ Bits(repeating: 1023)) &<< Bits(repeating: 52))
    }
    @inlinable @inline(__always) func lanewise(_ f: (Double) -> Double) -> Self {
        var r = self
        for i in 0..<8 { r[i] = f(self[i]) }
        return r
    }
    @inlinable @inline(__always) func lanewise(_ other: Self, _ f: (Double, Double) -> Double) -> Self {
        var r = self
        for i in 0..<8 { r[i] = f(self[i], other[i]) }
        return r
    }
}
