/// Decimal-to-double conversion by the Eisel-Lemire algorithm (as in fast_float): one or two 64x128-bit
/// multiplications against a table of powers of five. Returns nil whenever the result could be off
/// (possible halfway ties, subnormals, out-of-table exponents); the caller then uses the exact slow path.
/// Most 17-digit decimals (what shortest round-trip printing makes) convert here, ~10x cheaper than `Double(String)`.
enum EiselLemire {
    static func parse(mantissa w0: UInt64, exponent10 q: Int) -> Double? {
        guard w0 != 0, q >= -342, q <= 308 else { return nil }
        let lz = w0.leadingZeroBitCount
        let w = w0 << UInt64(lz)
        let index = 2 * (q + 342)
        var (high, low) = w.multipliedFullWidth(by: powersOfFive[index])
        // 55 bits of precision are needed (52 + 3); refine with the next 64 bits of 5^q when the
        // truncated product is too close to call.
        let precisionMask: UInt64 = 0xFFFF_FFFF_FFFF_FFFF >> 55
        if high & precisionMask == precisionMask {
            let second = w.multipliedFullWidth(by: powersOfFive[index + 1])
            let (sum, overflow) = low.addingReportingOverflow(second.high)
            low = sum
            if overflow { high &+= 1 }
        }
        if low == 0xFFFF_FFFF_FFFF_FFFF { return nil }  // still ambiguous
        let upperBit = Int(high >> 63)
        var mantissa = high >> UInt64(upperBit + 64 - 52 - 3)
        var power2 = (((152_170 + 65_536) * q) >> 16) + 63 + upperBit - lz + 1023
        if power2 <= 0 { return nil }  // subnormal: leave to the exact path
        // A product that is exactly halfway between two doubles: round-to-even needs care, leave it.
        if low <= 1 && q >= -4 && q <= 23 && mantissa & 3 == 1 { return nil }
        mantissa += mantissa & 1
        mantissa >>= 1
        if mantissa >= 2 << 52 {
            mantissa = 1 << 52
            power2 += 1
        }
        mantissa &= ~(1 << 52)
        if power2 >= 0x7FF { return nil }  // overflow: the slow path reports it
        return Double(bitPattern: UInt64(power2) << 52 | mantissa)
    }
}
