/// Elementary functions written over ``Lanes``, so that one implementation serves the single-row engine
/// (`Double`) and the batched evaluator (eight rows per vector), with identical bits.
@usableFromInline
enum Elementary {
    /// tanh in a branch-free form (selects, one division), accurate to a few ulp (tested against libm).
    ///
    /// |x| < 0.625: `x + x·z·P(z)/Q(z)` with z = x² (Cephes' rational approximation).
    /// Otherwise, with e = e^{2|x|} = 2^n·(q+p)/(q−p) (Cephes' exp: n = round(2|x|/ln 2), Padé form in the rest):
    /// tanh|x| = 1 − 2/(e+1) = 1 − 2B/(A+B), A = 2^n·(q+p), B = q−p. |x| is clamped to 22, past which tanh is
    /// 1 in double precision (so ±inf gives ±1). The sign is copied back, so tanh(−0) = −0; NaN stays NaN.
    @inlinable @inline(__always)
    static func tanh<V: Lanes>(_ x: V) -> V {
        let xa = x.magnitude
        // Saturated (as libm's tanh, which stops there too): the formula below gives exactly ±1 for |x| >= 22.
        // Skipping it when every lane is that far out makes saturated units cheap; NaN lanes are never skipped.
        if V.all(V.greaterOrEqual(xa, V(22))) { return V(1).withSign(of: x) }
        let small = V.signBitSet(xa - V(0.625))  // xa < 0.625 (xa - 0.625 is never -0)
        // Small-argument rational approximation.
        let z = xa * xa
        let sp = (V(-9.64399179425052238628e-1) * z + V(-9.92877231001918586564e1)) * z + V(-1.61468768441708447952e3)
        let sq = ((z + V(1.12811678491632931402e2)) * z + V(2.23548839060100448583e3)) * z + V(4.84406305325125486048e3)
        // e^{2t}, t = min(|x|, 22) (NaN takes the clamp too, and is restored at the end).
        let t = V.select(V.signBitSet(xa - V(22)), xa, V(22))
        let u = t + t
        let magic = V(6755399441055744.0)  // 0x1.8p52: adding it rounds to an integer, kept in the low bits
        let k = u * V(1.4426950408889634073599) + magic
        let n = k - magic
        let r = (u - n * V(6.93145751953125e-1)) - n * V(1.42860682030941723212e-6)
        let rr = r * r
        let p = r * ((V(1.26177193074810590878e-4) * rr + V(3.02994407707441961300e-2)) * rr + V(9.99999999999999999910e-1))
        let q = ((V(3.00198505138664455042e-6) * rr + V(2.52448340349684104192e-3)) * rr + V(2.27265548208155028766e-1)) * rr
            + V(2.00000000000000000009e0)
        let a = V.powerOfTwo(roundingSum: k) * (q + p)
        let b = q - p
        let ratio = V.select(small, xa * z * sp, b + b) / V.select(small, sq, a + b)
        let magnitude = V.select(small, xa + ratio, V(1) - ratio)
        return V.select(V.isNaN(x), x, magnitude.withSign(of: x))
    }
}
