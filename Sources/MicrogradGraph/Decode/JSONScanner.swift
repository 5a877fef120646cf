/// A syntax error found by `JSONScanner`: what was expected, and the byte offset where it went wrong.
struct ScanError: Error {
    var message: String
    var offset: Int
    /// True when the text is well-formed JSON but a number does not fit a Double (1e400): a 400, not malformed.
    var outOfRange = false
}

/// The RFC 8259 grammar over raw request bytes: whitespace, strings (UTF-8 validated, escapes decoded),
/// strict numbers, literals, and an iterative skip of whole values. It knows nothing of the graph schema;
/// `GraphRequestReader` drives it. Works on a borrowed buffer: the caller keeps the bytes alive.
struct JSONScanner {
    let base: UnsafePointer<UInt8>
    let end: Int
    var pos = 0
    /// Decoded strings that contained escapes land here; a string never grows when unescaped,
    /// so one buffer the size of the input is always enough. Allocated on the first escape.
    private var scratch: UnsafeMutablePointer<UInt8>?

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.end = count
    }

    mutating func release() {
        scratch?.deallocate()
        scratch = nil
    }

    // MARK: whitespace and punctuation

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    /// The next non-whitespace byte, not consumed.
    @inline(__always)
    mutating func peek() throws(ScanError) -> UInt8 {
        skipWhitespace()
        guard pos < end else { throw ScanError(message: "Unexpected end of input", offset: pos) }
        return base[pos]
    }

    @inline(__always)
    mutating func expect(_ c: UInt8, _ what: StaticString) throws(ScanError) {
        guard try peek() == c else { throw error("Expected \(what)") }
        pos += 1
    }

    func error(_ message: String) -> ScanError {
        if pos >= end { return ScanError(message: message + ", found end of input", offset: pos) }
        let c = base[pos]
        let found = c >= 0x20 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x" + String(c, radix: 16)
        return ScanError(message: "\(message), found \(found)", offset: pos)
    }

    /// After a member value: consumes `,` (true: another member follows) or the closing `close` (false).
    @inline(__always)
    mutating func nextMember(close: UInt8) throws(ScanError) -> Bool {
        let c = try peek()
        pos += 1
        if c == UInt8(ascii: ",") { return true }
        if c == close { return false }
        pos -= 1
        throw error(close == UInt8(ascii: "}") ? "Expected ',' or '}' in object" : "Expected ',' or ']' in array")
    }

    /// Consumes `{` or `[` and reports whether the container is empty (its closer consumed too).
    @inline(__always)
    mutating func open(_ opener: UInt8, close: UInt8) throws(ScanError) -> Bool {
        pos += 1
        if try peek() == close { pos += 1; return true }
        _ = opener
        return false
    }

    /// Reads `"name":` of an object member; the returned bytes are valid until the next string read.
    @inline(__always)
    mutating func readKey() throws(ScanError) -> UnsafeBufferPointer<UInt8> {
        guard try peek() == UInt8(ascii: "\"") else { throw error("Expected a member name string") }
        let key = try readString()
        try expect(UInt8(ascii: ":"), "':' after a member name")
        return key
    }

    // MARK: strings

    /// Reads a string starting at its opening quote. Returns its decoded UTF-8 bytes: a slice of the input
    /// when it has no escapes (the common case, no copy), else the scratch buffer (valid until the next call).
    mutating func readString() throws(ScanError) -> UnsafeBufferPointer<UInt8> {
        pos += 1  // opening quote
        let start = pos
        // Fast scan: plain ASCII up to the closing quote.
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return UnsafeBufferPointer(start: base + start, count: pos - 1 - start)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
            pos += 1
        }
        // Slow path: validate UTF-8; decode escapes into scratch once one is seen.
        var out = -1  // write index into scratch, -1 while no escape has been seen
        while true {
            guard pos < end else { throw ScanError(message: "Unterminated string", offset: start - 1) }
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                if out < 0 { return UnsafeBufferPointer(start: base + start, count: pos - 1 - start) }
                return UnsafeBufferPointer(start: scratch!, count: out)
            }
            if c < 0x20 { throw error("Control character in string (must be escaped)") }
            if c == UInt8(ascii: "\\") {
                if out < 0 {
                    // First escape: copy what came before it.
                    if scratch == nil { scratch = .allocate(capacity: max(end, 16)) }
                    out = pos - start
                    scratch!.update(from: base + start, count: out)
                }
                try readEscape(into: &out)
                continue
            }
            let n = try utf8SequenceLength(at: pos)
            if out >= 0 {
                (scratch! + out).update(from: base + pos, count: n)
                out += n
            }
            pos += n
        }
    }

    /// Validates one UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates, <= U+10FFFF); returns its length.
    @inline(__always)
    private func utf8SequenceLength(at i: Int) throws(ScanError) -> Int {
        let b0 = base[i]
        if b0 < 0x80 { return 1 }
        let bad = ScanError(message: "Invalid UTF-8 in string", offset: i)
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            i + k < end && base[i + k] >= lo && base[i + k] <= hi
        }
        switch b0 {
        case 0xC2...0xDF:
            guard cont(1) else { throw bad }
            return 2
        case 0xE0:
            guard cont(1, 0xA0), cont(2) else { throw bad }
            return 3
        case 0xE1...0xEC, 0xEE...0xEF:
            guard cont(1), cont(2) else { throw bad }
            return 3
        case 0xED:
            guard cont(1, 0x80, 0x9F), cont(2) else { throw bad }
            return 3
        case 0xF0:
            guard cont(1, 0x90), cont(2), cont(3) else { throw bad }
            return 4
        case 0xF1...0xF3:
            guard cont(1), cont(2), cont(3) else { throw bad }
            return 4
        case 0xF4:
            guard cont(1, 0x80, 0x8F), cont(2), cont(3) else { throw bad }
            return 4
        default:
            throw bad
        }
    }

    /// Decodes the escape at `pos` (a backslash) into scratch at `out`.
    private mutating func readEscape(into out: inout Int) throws(ScanError) {
        let at = pos
        guard pos + 1 < end else { throw ScanError(message: "Unterminated escape", offset: at) }
        let e = base[pos + 1]
        pos += 2
        let simple: UInt8
        switch e {
        case UInt8(ascii: "\""): simple = 0x22
        case UInt8(ascii: "\\"): simple = 0x5C
        case UInt8(ascii: "/"): simple = 0x2F
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            var scalar = try hex4(at: at)
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                // A high surrogate must be followed by an escaped low surrogate.
                guard pos + 1 < end, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                    throw ScanError(message: "Unpaired surrogate escape", offset: at)
                }
                pos += 2
                let low = try hex4(at: at)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw ScanError(message: "Unpaired surrogate escape", offset: at) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw ScanError(message: "Unpaired surrogate escape", offset: at)
            }
            writeScalar(scalar, into: &out)
            return
        default:
            throw ScanError(message: "Invalid escape in string", offset: at)
        }
        scratch![out] = simple
        out += 1
    }

    private mutating func hex4(at escapeStart: Int) throws(ScanError) -> UInt32 {
        guard pos + 4 <= end else { throw ScanError(message: "Truncated \\u escape", offset: escapeStart) }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = base[pos + k]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw ScanError(message: "Invalid \\u escape", offset: escapeStart)
            }
            v = v << 4 | UInt32(d)
        }
        pos += 4
        return v
    }

    private func writeScalar(_ s: UInt32, into out: inout Int) {
        let p = scratch!
        switch s {
        case 0..<0x80:
            p[out] = UInt8(s); out += 1
        case 0x80..<0x800:
            p[out] = UInt8(0xC0 | s >> 6); p[out + 1] = UInt8(0x80 | s & 0x3F); out += 2
        case 0x800..<0x10000:
            p[out] = UInt8(0xE0 | s >> 12); p[out + 1] = UInt8(0x80 | s >> 6 & 0x3F)
            p[out + 2] = UInt8(0x80 | s & 0x3F); out += 3
        default:
            p[out] = UInt8(0xF0 | s >> 18); p[out + 1] = UInt8(0x80 | s >> 12 & 0x3F)
            p[out + 2] = UInt8(0x80 | s >> 6 & 0x3F); p[out + 3] = UInt8(0x80 | s & 0x3F); out += 4
        }
    }

    // MARK: numbers

    /// Reads a number in strict JSON grammar (no `+`, `.5`, `5.`, `01`, `nan`, hex) and converts it exactly.
    /// The short common form inline at the caller (an out-of-line call saved and restored ~10 registers a
    /// number in batch columns), anything else out of line.
    @inline(__always)
    mutating func readNumber() throws(ScanError) -> Double {
        let negative = base[pos] == UInt8(ascii: "-")
        pos &+= negative ? 1 : 0
        if let v = shortNumber() { return negative ? -v : v }
        return try longNumber(negative: negative)
    }

    /// `readNumber` past the sign, for what `shortNumber` does not take.
    @inline(never)
    mutating func longNumber(negative: Bool) throws(ScanError) -> Double {
        let start = negative ? pos - 1 : pos
        var mantissa: UInt64 = 0
        var digits = 0          // significant digits folded into `mantissa`
        var exponent = 0        // decimal exponent applied to `mantissa`
        var exact = true        // false once a digit had to be dropped: use the slow, exact path
        guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected a digit") }
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(base[pos]) { throw error("Invalid number: leading zero") }
        } else {
            _ = digitRun(&mantissa, &digits, &exact)
        }
        if pos < end && base[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected a digit after '.'") }
            exponent -= digitRun(&mantissa, &digits, &exact)
        }
        if pos < end && (base[pos] | 0x20) == UInt8(ascii: "e") {
            pos += 1
            var expNegative = false
            if pos < end && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) {
                expNegative = base[pos] == UInt8(ascii: "-"); pos += 1
            }
            guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected exponent digits") }
            var e = 0
            while pos < end, isDigit(base[pos]) {
                if e < 1_000_000 { e = e * 10 + Int(base[pos] &- 48) }
                pos += 1
            }
            exponent += expNegative ? -e : e
        }
        if mantissa == 0 && exact { return negative ? -0.0 : 0.0 }
        // Clinger's fast path: both the mantissa and the power of ten are exact doubles, so one rounding.
        if exact && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            let m = Double(mantissa)
            let v = exponent < 0 ? m / Self.powersOfTen[-exponent] : m * Self.powersOfTen[exponent]
            return negative ? -v : v
        }
        if exact, let v = EiselLemire.parse(mantissa: mantissa, exponent10: exponent) {
            return negative ? -v : v
        }
        // Exact slow path (the grammar is already checked, so Double's laxer syntax cannot matter).
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        guard let v = Double(text), v.isFinite else {
            return try outOfRange(start)
        }
        return v
    }

    /// The common short number (`2`, `0.5`, `-2.193815`: at most 7 integer and 7 fraction digits, no exponent),
    /// sign already consumed, read from two 8-byte loads; nil (nothing consumed) for anything else, which the
    /// general path then reads or rejects. The digits fit 2^53, so Clinger's exact division applies.
    @inline(__always)
    mutating func shortNumber() -> Double? {
        guard pos + 16 <= end else { return nil }
        let word = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self)
        let n = Self.leadingDigits(word)
        // 1...7 digits, no leading zero unless the zero is alone.
        guard n > 0, n < 8, n == 1 || word & 0xFF != 0x30 else { return nil }
        let after = UInt8(truncatingIfNeeded: word &>> UInt64(8 * n))
        if after == UInt8(ascii: ".") {
            // "2.193815": integer and fraction digits in the same 8 bytes (the 9th read for the end) are
            // squeezed together over the point, so one conversion takes both (the 8-byte cases below take two).
            let intMask: UInt64 = (1 &<< UInt64(8 * n)) &- 1
            let squeezed = (word & intMask) | ((word &>> 8) & ~intMask)
                | UInt64(base[pos + 8]) &<< 56
            let m = Self.leadingDigits(squeezed)  // n + fraction digits; 8 when the number goes on past
            if m > n, m < 8, base[pos + m + 1] | 0x20 != UInt8(ascii: "e") {
                pos += m + 1
                return Double(Self.digitsValue(squeezed, m)) / Self.powersOfTen[m - n]
            }
        }
        var mantissa = Self.digitsValue(word, n)
        var scale = 1.0
        var length = n
        if after == UInt8(ascii: ".") {
            let fraction = UnsafeRawPointer(base + pos + n + 1).loadUnaligned(as: UInt64.self)
            let f = Self.leadingDigits(fraction)
            guard f > 0, f < 8 else { return nil }
            mantissa = mantissa &* ShortestDecimal.powersOfTen[f] &+ Self.digitsValue(fraction, f)
            scale = Self.powersOfTen[f]
            length += 1 + f
        }
        if base[pos + length] | 0x20 == UInt8(ascii: "e") { return nil }
        pos += length
        return Double(mantissa) / scale
    }

    /// How many of the 8 bytes of `word` (first byte lowest) are ASCII digits before the first that is not.
    /// A byte is a digit when its high nibble is 3 and stays 3 after adding 6; bytes after the first non-digit
    /// may come out wrong (a carry out of 0xFA...0xFF), which does not matter for the leading run.
    @inline(__always)
    static func leadingDigits(_ word: UInt64) -> Int {
        let high = word & 0xF0F0_F0F0_F0F0_F0F0
        let shifted = (word &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0
        let nonDigits = (high ^ 0x3030_3030_3030_3030) | (shifted ^ 0x3030_3030_3030_3030)
        return nonDigits == 0 ? 8 : nonDigits.trailingZeroBitCount >> 3
    }

    /// The value of the first `n` (1...8) bytes of `word`, all ASCII digits, first digit most significant:
    /// the digits moved to the top bytes over zeros, then pairs, quads and the whole by three multiplies.
    @inline(__always)
    static func digitsValue(_ word: UInt64, _ n: Int) -> UInt64 {
        var v = (word &- 0x3030_3030_3030_3030) &<< UInt64(8 * (8 - n))
        v = (v &* 10) &+ (v &>> 8)
        v = (((v & 0x0000_00FF_0000_00FF) &* 0x000F_4240_0000_0064)
            &+ (((v &>> 16) & 0x0000_00FF_0000_00FF) &* 0x0000_2710_0000_0001)) &>> 32
        return v & 0xFFFF_FFFF
    }

    /// Consumes a run of digits at `pos`, folding them into `mantissa` while it holds at most 19 significant
    /// digits (`digits` counts them; zeros before the first nonzero digit are not significant). Past that,
    /// digits are dropped and `exact` turns false. Returns the number of digits folded or skipped as leading
    /// zeros (the decimal exponent's share of a fraction); meaningless once `exact` is false.
    /// Eight bytes at a time where the input has them (SIMD within a register), one at a time after.
    @inline(__always)
    mutating func digitRun(_ mantissa: inout UInt64, _ digits: inout Int, _ exact: inout Bool) -> Int {
        var taken = 0
        while pos + 8 <= end {
            let word = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self)
            let n = Self.leadingDigits(word)
            // Counting leading zeros as significant here only reaches the exact slow path sooner.
            guard n > 0, digits + n <= 19 else { break }
            mantissa = mantissa &* ShortestDecimal.powersOfTen[n] &+ Self.digitsValue(word, n)
            digits += n
            taken += n
            pos += n
            if n < 8 { return taken }
        }
        while pos < end, isDigit(base[pos]) {
            let d = UInt64(base[pos] &- 48)
            if mantissa == 0 && d == 0 {
                taken += 1          // a leading zero of a fraction: not significant
            } else if digits < 19 {
                mantissa = mantissa &* 10 &+ d
                digits += 1
                taken += 1
            } else {
                exact = false
            }
            pos += 1
        }
        return taken
    }

    private func outOfRange(_ start: Int) throws(ScanError) -> Double {
        throw ScanError(message: "Number out of range for a double", offset: start, outOfRange: true)
    }

    /// Checks the grammar of a number without converting it (for skipped values).
    mutating func skipNumber() throws(ScanError) {
        if base[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected a digit") }
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(base[pos]) { throw error("Invalid number: leading zero") }
        } else {
            while pos < end, isDigit(base[pos]) { pos += 1 }
        }
        if pos < end && base[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected a digit after '.'") }
            while pos < end, isDigit(base[pos]) { pos += 1 }
        }
        if pos < end && (base[pos] | 0x20) == UInt8(ascii: "e") {
            pos += 1
            if pos < end && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard pos < end, isDigit(base[pos]) else { throw error("Invalid number: expected exponent digits") }
            while pos < end, isDigit(base[pos]) { pos += 1 }
        }
    }

    @inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }

    static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    // MARK: literals and skipping

    /// Consumes `true`, `false` or `null` at `pos`; returns which (0 false, 1 true, 2 null).
    mutating func readLiteral() throws(ScanError) -> Int {
        func match(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard pos + n <= end else { return false }
            let w = word.utf8Start
            for k in 0..<n where base[pos + k] != w[k] { return false }
            return true
        }
        switch base[pos] {
        case UInt8(ascii: "t") where match("true"): pos += 4; return 1
        case UInt8(ascii: "f") where match("false"): pos += 5; return 0
        case UInt8(ascii: "n") where match("null"): pos += 4; return 2
        default: throw error("Invalid literal")
        }
    }

    /// Skips one complete value, validating it, without recursion: nesting depth costs one byte of heap each.
    mutating func skipValue() throws(ScanError) {
        var stack: [Bool] = []  // true: inside an object
        while true {
            // A value starts here.
            let c = try peek()
            switch c {
            case UInt8(ascii: "{"):
                if try open(c, close: UInt8(ascii: "}")) { break }
                stack.append(true)
                _ = try readKey()
                continue
            case UInt8(ascii: "["):
                if try open(c, close: UInt8(ascii: "]")) { break }
                stack.append(false)
                continue
            case UInt8(ascii: "\""):
                _ = try readString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try skipNumber()
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                _ = try readLiteral()
            default:
                throw error("Expected a value")
            }
            // A value ended: close containers until one has another element.
            while let inObject = stack.last {
                if try nextMember(close: inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    if inObject { _ = try readKey() }
                    break
                }
                stack.removeLast()
            }
            if stack.isEmpty { return }
        }
    }
}
