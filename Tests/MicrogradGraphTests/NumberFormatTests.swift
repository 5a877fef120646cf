import Foundation
import Micrograd
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
        var random = SplitMix64(seed: 0x5EED)
        var mismatches = 0
        for k in 0..<200_000 {
            let bits = random.next()
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

/// `ShortestDecimal` (Schubfach digits, the standard library's layout) against `description`, byte for byte.
/// The random run is 500,000 bit patterns per suite run (5 s in a debug build on a loaded machine); set
/// MICROGRAD_NUMBER_CASES for a longer one.
@Suite("Shortest decimal")
struct ShortestDecimalTests {
    /// Mismatching doubles among `values` (and their negations), at most `limit` of them reported.
    func mismatches(_ values: some Sequence<Double>, limit: Int = 5) -> [String] {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { buffer.deallocate() }
        var found: [String] = []
        for v in values where v.isFinite {
            for d in [v, -v] {
                let n = ShortestDecimal.write(d, to: buffer)
                var expected = d.description
                let same = expected.withUTF8 { $0.elementsEqual(UnsafeBufferPointer(start: buffer, count: n)) }
                if !same && found.count < limit {
                    found.append("\(expected) (bits \(String(d.bitPattern, radix: 16))): wrote \(String(decoding: UnsafeBufferPointer(start: buffer, count: n), as: UTF8.self))")
                }
            }
        }
        return found
    }

    @Test func edgeCasesMatchDescription() {
        var edges: [Double] = [0, 1, 0.1, 0.3, 0.5, 2.0 / 3.0, 1e-4, 1e-5, 9.999999999999999e-05, 1e22, 1e23,
                               .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                               .leastNormalMagnitude.nextDown, 9_007_199_254_740_991, 9_007_199_254_740_992,
                               9_007_199_254_740_994, 4_503_599_627_370_495.5, 1234567890123456.7, 123456.789]
        // Subnormals from the smallest up, and the normals just above the least normal (irregular spacing there).
        for t in 0..<5_000 as Range<UInt64> {
            edges.append(Double(bitPattern: t))
            edges.append(Double(bitPattern: (1 << 52) + t))
            edges.append(Double(bitPattern: (1 << 52) - t))
        }
        // Every power of two (the gap below is half the gap above) and its neighbours.
        for e in -1074...1023 {
            let p = Double(sign: .plus, exponent: e, significand: 1)
            edges += [p, p.nextUp, p.nextDown]
        }
        // Every power of ten a double comes near, its neighbours, and the numbers around 1e-4 and 2^53 where the
        // layout changes.
        var p10 = 2 * Double.leastNonzeroMagnitude  // ~1e-323
        for _ in -323...308 {
            edges += [p10, p10.nextUp, p10.nextDown, p10 * 3, p10 * 7]
            p10 *= 10
        }
        var x = 1e-4
        for _ in 0..<64 {
            edges += [x, 9_007_199_254_740_992 + 2 * Double(edges.count % 7)]
            x = x.nextDown
        }
        #expect(mismatches(edges).isEmpty, "\(mismatches(edges))")
    }

    @Test func randomBitPatternsMatchDescription() {
        let cases = Int(ProcessInfo.processInfo.environment["MICROGRAD_NUMBER_CASES"] ?? "") ?? 500_000
        var random = SplitMix64(seed: 0xD1CE_5EED)
        let values = (0..<cases).lazy.map { k -> Double in
            let z = random.next()
            switch k % 4 {
            case 0, 1: return Double(bitPattern: z)                                      // any double
            case 2: return Double(bitPattern: z >> 12) * 1e300                           // subnormals, scaled
            default: return Double(z >> 11) / Double(1 << 53) * 6 - 3                     // what a batch answers
            }
        }
        #expect(mismatches(values).isEmpty, "\(mismatches(values))")
    }

    /// The writer stores digits 8 bytes at a time: none may land past `room`, which callers reserve.
    @Test func writesStayWithinRoom() {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { buffer.deallocate() }
        for d in [-2.2250738585072014e-308, -1.2345678901234567e-100, -0.00012345678901234567, -1234567890123456.7,
                  -9_007_199_254_740_992, -1, .leastNonzeroMagnitude, 0.5] {
            buffer.update(repeating: 0xAA, count: 64)
            let n = ShortestDecimal.write(d, to: buffer)
            #expect(n <= 24)
            #expect((ShortestDecimal.room..<64).allSatisfy { buffer[$0] == 0xAA }, "\(d)")
        }
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
