import Testing

@testable import MicrogradGraph

/// The JSON writer's numbers must be exactly `Double.description` (shortest round trip) for every finite value,
/// including its fast path for integral values.
@Suite("JSON numbers")
struct NumberFormatTests {
    func written(_ d: Double) -> String {
        var w = ByteWriter(capacity: 64)
        w.jsonNumber(d)
        return String(decoding: w.take(), as: UTF8.self)
    }

    @Test func integralValuesAndTheirNeighboursMatchDescription() {
        var edges: [Double] = [0, -0.0, 1, -1, 2, 10, 1e15, 1e16, 1e17, 4503599627370496, 9007199254740991,
                               9007199254740992, 9007199254740994, 18014398509481984, .greatestFiniteMagnitude,
                               .leastNonzeroMagnitude, .leastNormalMagnitude, 0.5, -2.5, 1e-7, 123456789.0]
        for k in 0...64 {
            let p = Double(sign: .plus, exponent: k, significand: 1)
            edges += [p, -p, p.nextUp, p.nextDown, -p.nextUp, (p + 1), (p - 1)]
        }
        for d in edges {
            #expect(written(d) == d.description, "\(d)")
        }
    }

    @Test func randomDoublesMatchDescription() {
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var mismatches = 0
        for k in 0..<200_000 {
            let bits = next()
            let d: Double
            switch k % 4 {
            case 0: d = Double(bitPattern: bits)                                            // any double
            case 1: d = Double(Int64(bitPattern: bits) >> Int64(bits & 63))                  // integers of every size
            case 2: d = Double(Int64(bitPattern: bits) >> 11) / Double(1 << (bits & 15))     // short fractions
            default: d = Double(Int32(truncatingIfNeeded: bits))                             // small integers
            }
            guard d.isFinite else { continue }
            if written(d) != d.description { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
}

/// ByteWriter's direct mode (writing into a caller's buffer) must give the same bytes as its chunked mode,
/// including when the buffer falls short and it moves on to its own storage.
@Suite("Byte writer")
struct ByteWriterTests {
    /// The same mix of writes (small and large, numbers, escapes) into `w`.
    func writeMix(_ w: inout ByteWriter) {
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 40_000)
        for k in 0..<3_000 {
            w.ascii("{\"k\":")
            w.int(k - 1_500)
            w.byte(UInt8(ascii: ","))
            w.jsonNumber(Double(k) / 7)
            w.jsonString("a\"b\\c\n\(k)")
            if k % 1_000 == 0 { big.withUnsafeBufferPointer { w.bytes($0) } }
        }
    }

    @Test(arguments: [1, 100, 70_000, 1 << 20])
    func directModeMatchesChunkedMode(bufferSize: Int) {
        var chunked = ByteWriter(capacity: 16)
        writeMix(&chunked)
        let expected = chunked.take()
        #expect(expected.count > 150_000)

        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }
        var direct = ByteWriter(into: buffer)
        writeMix(&direct)
        let fits = direct.isDirect
        let got = fits ? Array(buffer.prefix(direct.count)) : direct.take()
        #expect(fits == (bufferSize >= expected.count))
        #expect(got == expected)
    }
}
