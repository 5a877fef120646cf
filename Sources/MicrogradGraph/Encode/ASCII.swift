/// Hex digits, written in one place for ids, JSON and DOT escapes.
public enum ASCII {
    /// `0`-`9`, `a`-`f`, indexed by a nibble's value.
    public static let lowercaseHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The lowercase hex digit of `value`'s low nibble.
    @inline(__always)
    public static func hexDigit<T: BinaryInteger>(_ value: T) -> UInt8 {
        lowercaseHexDigits[Int(truncatingIfNeeded: value) & 0xF]
    }
}
