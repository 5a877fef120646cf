/// C's `%.4f` (round half to even on the exact binary value, as glibc does), written without `String(format:)`,
/// which costs a Foundation call and a String per number. Non-finite values print as NaN / Infinity / -Infinity.
enum FixedDecimal {
    static func write4(_ x: Double, to w: inout ByteWriter) {
        guard x.isFinite else {
            w.ascii(x.isNaN ? "NaN" : x < 0 ? "-Infinity" : "Infinity")
            return
        }
        if x.sign == .minus { w.byte(UInt8(ascii: "-")) }
        let a = x.magnitude
        guard a < 9_007_199_254_740_992 else {  // >= 2^53: an integer, no fraction digits to round
            writeInteger(a, to: &w)
            w.ascii(".0000")
            return
        }
        var whole = a.rounded(.towardZero)
        let fraction = a - whole                      // exact
        let scaled = fraction * 10_000
        let error = (-scaled).addingProduct(fraction, 10_000)  // exact: fraction * 10^4 = scaled + error
        var digits = scaled.rounded(.down)
        let rest = scaled - digits                    // exact
        // `rest` vs 1/2 decides, except at exactly 1/2, where the rounding error of `scaled` (or evenness) does.
        let up = rest > 0.5 || (rest == 0.5 && (error > 0 || (error == 0 && digits.truncatingRemainder(dividingBy: 2) == 1)))
        if up { digits += 1 }
        if digits >= 10_000 {
            digits -= 10_000
            whole += 1
        }
        w.unsigned(UInt(whole))
        w.byte(UInt8(ascii: "."))
        let d = Int(digits)
        w.byte(UInt8(48 + d / 1000))
        w.byte(UInt8(48 + d / 100 % 10))
        w.byte(UInt8(48 + d / 10 % 10))
        w.byte(UInt8(48 + d % 10))
    }

    /// The exact decimal digits of an integral double (up to ~1.8e308), by base-10^9 long multiplication.
    static func writeInteger(_ a: Double, to w: inout ByteWriter) {
        if a < 18_446_744_073_709_551_616 {
            w.unsigned(UInt(UInt64(a)))
            return
        }
        // a = significand * 2^shift with a 53-bit integer significand.
        let significand = a.significandBitPattern | (1 << 52)
        var shift = Int(a.exponent) - 52
        var limbs: [UInt64] = [significand % 1_000_000_000, significand / 1_000_000_000 % 1_000_000_000,
                               significand / 1_000_000_000_000_000_000]  // little-endian base 10^9
        while shift > 0 {
            let step = min(shift, 28)
            var carry: UInt64 = 0
            for k in limbs.indices {
                let v = limbs[k] << UInt64(step) + carry
                limbs[k] = v % 1_000_000_000
                carry = v / 1_000_000_000
            }
            while carry > 0 {
                limbs.append(carry % 1_000_000_000)
                carry /= 1_000_000_000
            }
            shift -= step
        }
        while limbs.count > 1 && limbs.last == 0 { limbs.removeLast() }
        w.unsigned(UInt(limbs[limbs.count - 1]))
        for k in stride(from: limbs.count - 2, through: 0, by: -1) {
            let v = Int(limbs[k])
            var div = 100_000_000
            while div > 0 {
                w.byte(UInt8(48 + v / div % 10))
                div /= 10
            }
        }
    }
}
