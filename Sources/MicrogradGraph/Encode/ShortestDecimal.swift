/// The shortest round-trip decimal text of a finite Double, byte for byte what `Double.description` prints
/// (tested against it over millions of bit patterns: NumberFormatTests), without the standard library's
/// general path (`_Float64ToASCII` took ~470 instructions a number, a third of a batch answer's CPU).
///
/// Digits: in the common case one 64x128-bit product against `powers` (generated, exact) decides (`decimal`);
/// else the Schubfach algorithm (R. Giulietti, "The Schubfach way to render doubles", 2020) as in the JDK's
/// `DoubleToDecimal`: one 64x126-bit multiply per bound, then the shorter of the two candidate lengths, and of
/// equally short candidates the one closest to the value (ties to even). Text: the standard library's layout rules (`FloatingPointToString.swift`):
/// exponential form below 1e-4 (by the shortest digits' exponent) and above 2^53, `e` with a sign and at
/// least two digits, a `.` in every plain number (`4.0`, `0.001`, `123.45`), one digit before the point.
enum ShortestDecimal {
    /// The longest text: "-2.2250738585072014e-308" (for bounds of what a run of numbers takes).
    static let maxLength = 24
    /// Bytes a caller must have room for at `out`: digits are stored 8 bytes at a time and the plain form's
    /// point is made by moving 16 bytes up one, past the text's end at times but never past `room`.
    static let room = 40

    /// Writes `d` (finite) at `out`; returns the number of bytes of text. `@_transparent` for the reason
    /// given at `decimal`: the per-number call cost ~6-30 instructions (harness; release server).
    ///
    /// The common case (a normal double that is not an integer or a power of two, in plain notation) is written
    /// without a branch on the value: random data mispredicted its layout branches (sign, digit count, trailing
    /// zeros, below or above 1) several times a number. Its 16-17 digits are stored whole; the trailing zeros are
    /// counted in their BCD form (no divisions); "0.000" is stored in front in every case, the digits placed after
    /// it or over it; and the point is made by moving the 16 bytes after its place up one, which below 1 moves
    /// bytes past the text instead. Everything else takes `writeGeneral`.
    @_transparent
    static func write(_ d: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let bits = d.bitPattern
        out[0] = UInt8(ascii: "-")
        let p = out + Int(truncatingIfNeeded: bits &>> 63)
        let magnitude = bits & ~(1 << 63)
        let fraction = magnitude & ((1 << 52) - 1)
        let biased = Int(truncatingIfNeeded: magnitude &>> 52)
        let c = fraction | (1 << 52)
        // 1 <= value < 2^53 is an integer when the bits below its point are 0 (value = c * 2^-shift).
        let shift = UInt64(truncatingIfNeeded: 1075 &- biased)
        let integral = shift <= 52 && c & ((1 &<< (shift & 63)) &- 1) == 0
        if fraction != 0 && biased != 0 && !integral {
            let (significand, k, exact) = nearest(c: c, biased: biased)
            let n = 16 &+ (significand >= 10_000_000_000_000_000 ? 1 : 0)  // 16 or 17 digits
            let scientific = k &+ n &- 1
            if exact && scientific >= -4 && magnitude <= 0x4340_0000_0000_0000 {
                let top = significand / 10_000_000_000_000_000
                let rest = significand &- top &* 10_000_000_000_000_000
                let high = rest / 100_000_000
                let highDigits = bcd(UInt32(truncatingIfNeeded: high))
                let lowDigits = bcd(UInt32(truncatingIfNeeded: rest &- high &* 100_000_000))
                // Trailing zero digits: zero bytes at the top of the BCD words (the last digit is the highest byte).
                let lowZeros = lowDigits.leadingZeroBitCount &>> 3
                let zeros = lowZeros == 8 ? 8 &+ highDigits.leadingZeroBitCount &>> 3 : lowZeros
                let digits = n &- zeros
                let below1 = scientific < 0
                // "0.000000" first: below 1 the digits go after "0." and -scientific - 1 zeros, else over it.
                UnsafeMutableRawPointer(p).storeBytes(of: 0x3030_3030_3030_2E30, as: UInt64.self)
                let q = below1 ? p + (1 &- scientific) : p
                q[0] = UInt8(truncatingIfNeeded: top) &+ 48
                let r = UnsafeMutableRawPointer(q + (n &- 16))
                r.storeBytes(of: highDigits | 0x3030_3030_3030_3030, as: UInt64.self)
                (r + 8).storeBytes(of: lowDigits | 0x3030_3030_3030_3030, as: UInt64.self)
                let dot = below1 ? q + n : p + (scientific &+ 1)
                let first = UnsafeRawPointer(dot).loadUnaligned(as: UInt64.self)
                let second = UnsafeRawPointer(dot + 8).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(dot + 1).storeBytes(of: first, as: UInt64.self)
                UnsafeMutableRawPointer(dot + 9).storeBytes(of: second, as: UInt64.self)
                dot[0] = UInt8(ascii: ".")
                return p - out &+ (below1 ? 1 &- scientific &+ digits : digits &+ 1)
            }
        }
        return p - out &+ writeGeneral(magnitude, to: p)
    }

    /// `write` for a magnitude (the sign written), by cases: zero, integers, then the shortest digits laid out
    /// in plain or exponential form. Out of line: `write` takes the common case without it.
    @inline(never)
    static func writeGeneral(_ magnitude: UInt64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let p = out
        if magnitude == 0 {
            UnsafeMutableRawPointer(p).storeBytes(of: 0x302E_30, as: UInt32.self)  // "0.0"
            return p + 3 - out
        }
        let biased = Int(truncatingIfNeeded: magnitude >> 52)
        if biased >= 1023 && magnitude <= 0x4340_0000_0000_0000 {  // 1 <= value <= 2^53
            let c = (magnitude & ((1 << 52) - 1)) | (1 << 52)
            let shift = 1075 - biased  // value = c * 2^-shift; -1 for 2^53 itself
            if shift < 0 || c & ((1 << UInt64(shift)) - 1) == 0 {
                // An integer: its digits and ".0", what the general path below prints for it too.
                let v = shift < 0 ? c << 1 : c >> UInt64(shift)
                let n = digitCount(v)
                writeDigits(v, count: n, to: p)
                p[n] = UInt8(ascii: ".")
                p[n + 1] = UInt8(ascii: "0")
                return p + n + 2 - out
            }
        }
        let (significand, exponent) = decimal(magnitude)
        let n = digitCount(significand)
        let scientific = exponent &+ n &- 1
        if scientific < -4 || magnitude > 0x4340_0000_0000_0000 {  // 2^53's bit pattern
            // "1.2345e-05", "5e-324", "1.8014398509481984e+16": digits one place right, the first moved back.
            writeDigits(significand, count: n, to: p + 1)
            p[0] = p[1]
            var end = 1
            if n > 1 {
                p[1] = UInt8(ascii: ".")
                end = n + 1
            }
            p[end] = UInt8(ascii: "e")
            var e = scientific
            if e < 0 {
                p[end + 1] = UInt8(ascii: "-")
                e = -e
            } else {
                p[end + 1] = UInt8(ascii: "+")
            }
            end += 2
            if e >= 100 {
                p[end] = UInt8(truncatingIfNeeded: e / 100) &+ 48
                e %= 100
                end += 1
            }
            p[end] = UInt8(truncatingIfNeeded: e / 10) &+ 48
            p[end + 1] = UInt8(truncatingIfNeeded: e % 10) &+ 48
            return p + end + 2 - out
        }
        if scientific < 0 {
            // "0.00012", "0.5": "0." and up to three zeros before the digits.
            UnsafeMutableRawPointer(p).storeBytes(of: 0x3030_2E30, as: UInt32.self)  // "0.00" (the last 0 may be a digit)
            p[4] = UInt8(ascii: "0")
            let zeros = -scientific - 1
            writeDigits(significand, count: n, to: p + 2 + zeros)
            return p + 2 + zeros + n - out
        }
        if scientific < n - 1 {
            // "123.45": digits one place right, then the integer part moved back over the gap.
            writeDigits(significand, count: n, to: p + 1)
            for i in 0...scientific { p[i] = p[i + 1] }
            p[scientific + 1] = UInt8(ascii: ".")
            return p + n + 1 - out
        }
        // An integer: taken by the integral path above, which this keeps exact should that ever change.
        writeDigits(significand, count: n, to: p)
        var i = n
        while i <= scientific {
            p[i] = UInt8(ascii: "0")
            i += 1
        }
        p[scientific + 1] = UInt8(ascii: ".")
        p[scientific + 2] = UInt8(ascii: "0")
        return p + scientific + 3 - out
    }

    /// `decimal(bits)` by one 64x128-bit product where it can (V. Zverovich's zmij, after Y. Guo's yy_double): for a
    /// normal double that is not a power of two, c * 2^q * 10^-k (k = floor(log10(2^q))) has 16 or 17 integer
    /// digits, and its rounding interval (c +- 1/2) * 2^q * 10^-k is under 10 wide, so it holds at most one
    /// multiple of 10: that one if it does (the shorter candidate), else the integer nearest the value. The
    /// product's fraction and the half-interval, in fixed point with the last integer digit, decide both. Where
    /// the truncated product could decide wrongly (an exact half, a bound within one unit of the next multiple of
    /// 10) and for subnormals and powers of two, the Schubfach path (`schubfach`) decides. Same answer as it,
    /// always (NumberFormatTests, and tens of millions of random patterns before this went in).
    @inline(__always)
    static func decimal(_ bits: UInt64) -> (significand: UInt64, exponent: Int) {
        let fraction = bits & ((1 << 52) - 1)
        let biased = Int(truncatingIfNeeded: bits &>> 52)
        if fraction != 0 && biased != 0 {
            let (significand, k, exact) = nearest(c: fraction | (1 << 52), biased: biased)
            if exact { return significand % 10 == 0 ? stripped(significand, k) : (significand, k) }
        }
        return schubfach(bits)
    }

    /// The fast path of `decimal` for significand `c` (implicit bit included) and biased exponent 1...2046
    /// (not a power of two): the digits as 16-17 (trailing zeros kept) and their exponent, and whether they are
    /// certain (else `schubfach` decides).
    @_transparent
    static func nearest(c: UInt64, biased: Int) -> (significand: UInt64, exponent: Int, exact: Bool) {
        let q = biased &- 1075
        let k = (q &* 315_653) &>> 20  // floor(log10(2^q))
        let shift = UInt64(truncatingIfNeeded: q &+ (((0 &- k) &* 217_707) &>> 16) &+ 1)  // 1...4
        let i = (k &- minK) &* 2
        let p1 = powers[i], p0 = powers[i &+ 1]
        // integral.fractional = c * 2^q * 10^-k (P * c * 2^shift / 2^128, P rounded down).
        let x = c &<< shift
        let high = p1.multipliedFullWidth(by: x)
        let low = p0.multipliedFullWidth(by: x).high
        let fractional = high.low &+ low
        let integral = high.high &+ (fractional < low ? 1 : 0)
        let half: UInt64 = 1 << 63
        let digit = integral % 10
        // The value and half the interval (P * 2^shift / 2^129) above the multiple of 10 below it, in units
        // of 2^-60 (4 integer bits: the last digit).
        let remainder = (digit &<< 60) | (fractional &>> 4)
        let halfInterval = p1 &>> (5 &- shift)
        let upper = remainder &+ halfInterval
        let ten: UInt64 = 10 << 60
        let shorter = integral &- digit
        let even: UInt64 = 1 &- (c & 1)  // an even significand's interval includes its bounds
        let nearest = integral &+ (fractional > half ? 1 : 0)
        let inside = remainder < halfInterval &+ even ? shorter : nearest
        let significand = ten < upper ? shorter &+ 10 : inside
        return (significand, k, fractional != half && ten &- upper > 1)
    }

    /// The shortest decimal `significand * 10^exponent` (no trailing zeros) that reads back as the positive
    /// finite double with bit pattern `bits`; of several, the closest, ties to an even last digit.
    /// Wrapping arithmetic and masked shifts throughout: every value is in range by construction, and the
    /// checked forms cost a branch each on a path taken per number.
    /// Out of line: `decimal` takes the common case without it.
    @inline(never)
    static func schubfach(_ bits: UInt64) -> (significand: UInt64, exponent: Int) {
        let fraction = bits & ((1 << 52) - 1)
        let biased = Int(truncatingIfNeeded: bits &>> 52)
        var c: UInt64
        let q: Int
        var dk = 0
        if biased != 0 {
            c = fraction | (1 << 52)
            q = biased &- 1075
        } else {
            q = -1074
            // The two smallest subnormals: one more digit of room, so the interval holds a candidate.
            if fraction < 3 {
                c = fraction &* 10
                dk = -1
            } else {
                c = fraction
            }
        }
        let out: UInt64 = c & 1  // an odd significand's rounding interval excludes its bounds
        let cb = c &<< 2
        let cbr = cb &+ 2
        let cbl: UInt64
        let k: Int
        if fraction != 0 || biased <= 1 {
            cbl = cb &- 2
            k = (q &* 661_971_961_083) &>> 41  // floor(log10(2^q))
        } else {
            // A power of two (not the least normal): the gap below is half the gap above.
            cbl = cb &- 1
            k = (q &* 661_971_961_083 &- 274_743_187_321) &>> 41  // floor(log10(3/4 * 2^q))
        }
        let h = UInt64(truncatingIfNeeded: q &+ ((0 &- k &* 913_124_641_741) &>> 38) &+ 2)  // 1...4
        // g = floor(P / 4) + 1, as g1 * 2^63 + g0.
        let i = (k &- minK) &* 2
        let p1 = powers[i], p0 = powers[i &+ 1]
        let gLow = ((p1 &<< 62) | (p0 &>> 2)) &+ 1
        let gHigh = (p1 &>> 2) &+ (gLow == 0 ? 1 : 0)
        let g1 = (gHigh &<< 1) | (gLow &>> 63), g0 = gLow & ((1 << 63) - 1)
        let vb = roundToOdd(g1, g0, cb &<< h)
        let vbl = roundToOdd(g1, g0, cbl &<< h) &+ out
        let vbr = roundToOdd(g1, g0, cbr &<< h) &- out
        // vb, vbl, vbr: 4 * 10^-k times the value and its interval's bounds (bounds moved in by one when
        // excluded), rounded to odd.
        let s = vb &>> 2
        let exponent = k &+ dk
        if s >= 10 {
            // One digit shorter: at most one multiple of 10 * 10^k fits in the interval.
            let sp = s / 10
            let sp10 = sp &* 10
            let tp10 = sp10 &+ 10
            let upin = vbl <= sp10 &<< 2
            let wpin = tp10 &<< 2 <= vbr
            if upin != wpin {
                // sp10 or tp10 * 10^exponent, that is sp or sp + 1 * 10^(exponent + 1).
                let short = upin ? sp : sp &+ 1
                return short % 10 == 0 ? stripped(short, exponent &+ 1) : (short, exponent &+ 1)
            }
        }
        let t = s &+ 1
        let uin = vbl <= s &<< 2
        let win = t &<< 2 <= vbr
        let significand: UInt64
        if uin != win {
            significand = uin ? s : t
        } else {
            // Both in the interval: the closer one, ties to even.
            let twiceMid = (s &+ t) &<< 1
            significand = vb < twiceMid || (vb == twiceMid && s & 1 == 0) ? s : t
        }
        // Of this length a trailing zero is rare (and then the shorter length above usually took it).
        return significand % 10 == 0 ? stripped(significand, exponent) : (significand, exponent)
    }

    /// `significand * 10^exponent` without the significand's trailing zeros.
    @inline(__always)
    static func stripped(_ significand: UInt64, _ exponent: Int) -> (significand: UInt64, exponent: Int) {
        var m = significand, e = exponent
        while m % 100_000_000 == 0 {
            m /= 100_000_000
            e &+= 8
        }
        if m % 10_000 == 0 { m /= 10_000; e &+= 4 }
        if m % 100 == 0 { m /= 100; e &+= 2 }
        if m % 10 == 0 { m /= 10; e &+= 1 }
        return (m, e)
    }

    /// floor(g * cp / 2^126) with the bits below folded into the lowest bit (round to odd), g = g1 * 2^63 + g0.
    @inline(__always)
    static func roundToOdd(_ g1: UInt64, _ g0: UInt64, _ cp: UInt64) -> UInt64 {
        let x1 = g0.multipliedFullWidth(by: cp).high
        let y = g1.multipliedFullWidth(by: cp)
        let z = (y.low >> 1) &+ x1
        let mask63: UInt64 = (1 << 63) - 1
        return (y.high &+ (z >> 63)) | (((z & mask63) &+ mask63) >> 63)
    }

    /// The number of decimal digits of `v` (>= 1).
    @inline(__always)
    static func digitCount(_ v: UInt64) -> Int {
        let guess = ((64 &- v.leadingZeroBitCount) &* 1233) &>> 12  // floor(log10(2^bits)), 0...19
        return guess &+ (v >= powersOfTen[guess] ? 1 : 0)
    }

    static let powersOfTen: [UInt64] = [
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000,
        100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
        10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000, 10_000_000_000_000_000_000,
    ]

    /// Writes the `count` (1...17, exactly `v`'s digit count) decimal digits of `v` at `p`, 8 at a time;
    /// may store up to 8 bytes past them.
    @inline(__always)
    static func writeDigits(_ v: UInt64, count: Int, to p: UnsafeMutablePointer<UInt8>) {
        let raw = UnsafeMutableRawPointer(p)
        if count <= 8 {
            raw.storeBytes(of: eightDigits(UInt32(truncatingIfNeeded: v)) >> (8 * (8 - count)), as: UInt64.self)
        } else if count <= 16 {
            let high = UInt32(truncatingIfNeeded: v / 100_000_000)
            let low = UInt32(truncatingIfNeeded: v % 100_000_000)
            raw.storeBytes(of: eightDigits(high) >> (8 * (16 - count)), as: UInt64.self)
            (raw + (count - 8)).storeBytes(of: eightDigits(low), as: UInt64.self)
        } else {
            let top = v / 10_000_000_000_000_000
            let rest = v % 10_000_000_000_000_000
            p[0] = UInt8(truncatingIfNeeded: top) &+ 48
            (raw + 1).storeBytes(of: eightDigits(UInt32(truncatingIfNeeded: rest / 100_000_000)), as: UInt64.self)
            (raw + 9).storeBytes(of: eightDigits(UInt32(truncatingIfNeeded: rest % 100_000_000)), as: UInt64.self)
        }
    }

    /// `n` (< 10^8) as 8 ASCII digits with leading zeros, first digit in the lowest byte (little-endian
    /// store order), by SIMD-within-a-register division: halves of 4 digits, quarters of 2, then digits. Each
    /// step puts a lane's quotient q in its low half and the remainder x - d * q in its high half at once, as
    /// (x << w) + q * (1 - d << w) (X. JunBo's form, as in zmij; wrapping, exact since every lane ends >= 0).
    @inline(__always)
    static func eightDigits(_ n: UInt32) -> UInt64 {
        bcd(n) | 0x3030_3030_3030_3030
    }

    /// `eightDigits` before the ASCII offset: one digit value 0...9 per byte.
    @inline(__always)
    static func bcd(_ n: UInt32) -> UInt64 {
        let x = UInt64(n)
        let high4 = (x &* 109_951_163) &>> 40  // x / 10^4 for x < 10^8
        let fours = (x &<< 32) &+ high4 &* (1 &- (10_000 &<< 32))
        let high2 = ((fours &* 10_486) &>> 20) & 0x0000_007F_0000_007F  // each 32-bit lane / 100
        let pairs = (fours &<< 16) &+ high2 &* (1 &- (100 &<< 16))
        let high1 = ((pairs &* 103) &>> 10) & 0x000F_000F_000F_000F  // each 16-bit lane / 10
        return (pairs &<< 8) &+ high1 &* (1 &- (10 &<< 8))
    }
}
