/// The small ASCII helpers every layer needs once: hex digits and case-insensitive comparison.
public enum ASCII {
    /// `0`-`9`, `a`-`f`, indexed by a nibble's value.
    public static let lowercaseHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The lowercase hex digit of `value`'s low nibble.
    @inline(__always)
    public static func hexDigit<T: BinaryInteger>(_ value: T) -> UInt8 {
        lowercaseHexDigits[Int(truncatingIfNeeded: value) & 0xF]
    }

    /// The byte with an ASCII letter's case folded to lowercase; other bytes unchanged.
    @inline(__always)
    public static func lowercased(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }

    /// `bytes` equals the lowercase ASCII `literal`, ignoring the case of ASCII letters in `bytes`.
    public static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        for k in 0..<bytes.count where lowercased(bytes[k]) != p[k] { return false }
        return true
    }

    /// `a` and `b` are equal ignoring the case of ASCII letters (non-ASCII compared exactly).
    public static func equalsIgnoringCase(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { lowercased($0) == lowercased($1) }
    }
}
