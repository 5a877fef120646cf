import Foundation
import Micrograd
import Testing
@testable import MicrogradGraph

/// The scanner accepts exactly RFC 8259 JSON: strict numbers, UTF-8, escapes, any nesting depth without recursion.
@Suite struct JSONGrammarTests {
    func leaf(_ valueText: String) -> String { #"{"nodes":[{"id":"a","value":\#(valueText)}]}"# }

    @Test(arguments: ["+1", ".5", "5.", "01", "-01", "0x10", "nan", "NaN", "inf", "Infinity", "-Infinity", "1e", "1e+", "-",
                      "--1", "1.e5", "1.5e", "0.", "- 1", "1_000", "١"])
    func nonJSONNumbersAreRejected(_ text: String) throws {
        let p = try #require(decodeProblem(leaf(text)))
        #expect([.malformedJSON, .invalidRequest].contains(p.kind))
        #expect(p.kind.rawValue == "malformed-json", "\(text): \(p.detail)")
    }

    @Test(arguments: [
        ("0", 0.0), ("-0", -0.0), ("1E5", 1e5), ("1e-5", 1e-5), ("2.5E+3", 2500), ("0.1", 0.1), ("5e-324", .leastNonzeroMagnitude),
        ("1e-400", 0), ("1.7976931348623157e308", 1.7976931348623157e308), ("123456789012345678901234567890", 1.2345678901234568e29),
        ("0.30000000000000004", 0.30000000000000004), ("9007199254740993", 9007199254740992), ("2.2250738585072011e-308", Double(bitPattern: 0x000F_FFFF_FFFF_FFFF)),
        ("0.000000000000000000000000000000000000000000001", 1e-45), ("-2.5", -2.5), ("100e-2", 1),
    ])
    func jsonNumbersConvertExactly(_ text: String, _ expected: Double) throws {
        let spec = try decode(leaf(text))
        #expect(spec.values[0].bitPattern == expected.bitPattern, "\(text)")
    }

    @Test func randomDecimalsMatchSwiftsExactConversion() {
        // Eisel-Lemire fast path vs Double(String) (exact, per FIELD-NOTES) on 200,000 decimals of many shapes.
        var rng = SplitMix64(seed: 1)
        var mismatches: [String] = []
        for k in 0..<200_000 {
            let digits = Int.random(in: 1...19, using: &rng)
            var mantissa = String(UInt64.random(in: 1...UInt64.max, using: &rng))
            mantissa = String(mantissa.prefix(digits))
            let exponent = Int.random(in: -340...300, using: &rng)
            let text = k % 3 == 0 ? "\(mantissa)e\(exponent)" : k % 3 == 1 ? "0.\(mantissa)e\(exponent)" : "\(mantissa.prefix(1)).\(mantissa.dropFirst())e\(exponent)"
            let text2 = text.hasSuffix(".e\(exponent)") ? text.replacingOccurrences(of: ".e", with: "e") : text
            let bytes = Array(text2.utf8)
            let got: Double? = bytes.withUnsafeBufferPointer { buf in
                var s = JSONScanner(base: buf.baseAddress!, count: buf.count)
                return try? s.readNumber()
            }
            let want = Double(text2)
            if want.map({ $0.isFinite }) ?? false {
                if got?.bitPattern != want?.bitPattern { mismatches.append(text2) }
            } else if got != nil {
                mismatches.append(text2)
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    /// The same with input after the number, so digits are read 8 bytes at a time: runs of 1 to 30 digits, zeros
    /// before and inside them, and every run length around the 8-byte steps and the 19-digit limit.
    @Test func randomDecimalsReadEightDigitsAtATimeMatchSwiftsExactConversion() {
        var rng = SplitMix64(seed: 2)
        var mismatches: [String] = []
        func digits(_ n: Int) -> String {
            String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 48...57, using: &rng))) })
        }
        for k in 0..<200_000 {
            let whole = k % 5 == 0 ? "0" : String(Int.random(in: 1...9, using: &rng)) + digits(Int.random(in: 0...29, using: &rng))
            let zeros = String(repeating: "0", count: k % 7 == 0 ? Int.random(in: 0...24, using: &rng) : 0)
            let fraction = k % 4 == 0 ? "" : "." + zeros + digits(Int.random(in: 1...30, using: &rng))
            let exponent = k % 3 == 0 ? "e\(Int.random(in: -30...30, using: &rng))" : ""
            let text = (k % 2 == 0 ? "-" : "") + whole + fraction + exponent
            let bytes = Array((text + [",", "]", " ", "x", "\u{1}", "\u{FF}"][k % 6] + "        ").utf8)
            let got: Double? = bytes.withUnsafeBufferPointer { buf in
                var s = JSONScanner(base: buf.baseAddress!, count: buf.count)
                let v = try? s.readNumber()
                return s.pos == text.utf8.count ? v : nil
            }
            if got?.bitPattern != Double(text)?.bitPattern { mismatches.append(text) }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    // MARK: strings and UTF-8

    func idProblem(_ raw: [UInt8]) -> Problem? {
        decodeProblem(Array(#"{"nodes":[{"id":""#.utf8) + raw + Array(#"","value":1}]}"#.utf8))
    }

    @Test(arguments: [
        [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9D, 0x84, 0x9E], [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF],
        [0xED, 0x9F, 0xBF], [0xE0, 0xA0, 0x80], [0xF0, 0x90, 0x80, 0x80], [0x7F],
    ] as [[UInt8]])
    func validUTF8IsAccepted(_ raw: [UInt8]) throws {
        #expect(idProblem(raw) == nil)
        let spec = try GraphRequestDecoder.decode(Array(#"{"nodes":[{"id":""#.utf8) + raw + Array(#"","value":1}]}"#.utf8), limits: GraphLimits())
        #expect(Array(spec.ids[0].utf8) == raw)
    }

    @Test(arguments: [
        [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
        [0x80], [0xBF], [0xE2, 0x82], [0xFF], [0xFE], [0xF0, 0x9D, 0x84], [0xC3], [0x01], [0x1F], [0x0A],
    ] as [[UInt8]])
    func invalidUTF8AndRawControlCharactersAreRejected(_ raw: [UInt8]) throws {
        let p = try #require(idProblem(raw))
        #expect([.malformedJSON, .invalidRequest].contains(p.kind) && p.kind.rawValue == "malformed-json", "\(raw): \(p.detail)")
        #expect(p.pointer == "/nodes/0/id")
    }

    @Test func invalidUTF8IsRejectedEvenInSkippedMembers() throws {
        let body = Array(#"{"nodes":[{"id":"a","value":1}],"x":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        let p = try #require(decodeProblem(body))
        #expect(p.kind.rawValue == "malformed-json" && p.pointer == "/x")
    }

    @Test(arguments: [
        (#"\u00e9"#, "é"), (#"\ud834\udd1e"#, "𝄞"), (#"\uD834\uDD1E"#, "𝄞"), (#"\"\\\/\b\f\n\r\t"#, "\"\\/\u{8}\u{C}\n\r\t"),
        (#"\u0000"#, "\u{0}"), (#"a\u0041b"#, "aAb"), (#"\uffff"#, "\u{FFFF}"), (#"x\ud83d\ude00y"#, "x😀y"),
    ])
    func escapesDecode(_ escaped: String, _ expected: String) throws {
        let spec = try decode(#"{"nodes":[{"id":"\#(escaped)","value":1}]}"#)
        #expect(spec.ids[0] == expected)
    }

    @Test(arguments: [#"\ud834"#, #"\udd1e"#, #"\ud834\u0041"#, #"\ud834x"#, #"\x"#, #"\u12"#, #"\u12g4"#, #"\'"#, #"\U0041"#])
    func badEscapesAreRejected(_ escaped: String) throws {
        let p = try #require(decodeProblem(#"{"nodes":[{"id":"\#(escaped)","value":1}]}"#))
        #expect([.malformedJSON, .invalidRequest].contains(p.kind) && p.kind.rawValue == "malformed-json", "\(escaped): \(p.detail)")
    }

    @Test func byteOrderMarkIsRejected() throws {
        let p = try #require(decodeProblem([0xEF, 0xBB, 0xBF] + Array(seedRequest.utf8)))
        #expect([.malformedJSON, .invalidRequest].contains(p.kind))
    }

    // MARK: nesting

    @Test func deepNestingUnderAnUnknownMemberIsSkippedIteratively() throws {
        // Refused as unknown, but only after it was read to its end without recursion.
        let depth = 100_000
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let deepArrays = try #require(decodeProblem(#"{"deep":\#(arrays),"nodes":[{"id":"a","value":1}]}"#))
        #expect(deepArrays.kind.rawValue == "invalid-request" && deepArrays.pointer == "/deep")
        let objects = String(repeating: #"{"k":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        let deepObjects = try #require(decodeProblem(#"{"nodes":[{"id":"a","value":1,"deep":\#(objects)}]}"#))
        #expect(deepObjects.kind.rawValue == "invalid-request" && deepObjects.pointer == "/nodes/0/deep")
        let broken = try #require(decodeProblem(#"{"deep":\#(arrays.dropLast()),"nodes":[{"id":"a","value":1}]}"#))
        #expect(broken.kind.rawValue == "malformed-json")
    }

    @Test func deepNestingGivesACleanError() throws {
        let depth = 100_000
        let open = String(repeating: "[", count: depth)
        let unbalanced = try #require(decodeProblem(open + String(repeating: "]", count: depth - 1)))
        #expect([.malformedJSON, .invalidRequest].contains(unbalanced.kind) && unbalanced.kind.rawValue == "malformed-json")
        let balanced = try #require(decodeProblem(open + String(repeating: "]", count: depth)))
        #expect([.malformedJSON, .invalidRequest].contains(balanced.kind) && balanced.kind.rawValue == "invalid-request")
        let inNodes = try #require(decodeProblem(#"{"nodes":\#(open)}"#))
        #expect([.malformedJSON, .invalidRequest].contains(inNodes.kind))
    }

    @Test func whitespaceIsOnlyTheFourJSONCharacters() throws {
        #expect(decodeProblem(" \t\r\n{ \"nodes\" : [ { \"id\" : \"a\" , \"value\" : 1 } ] } \n") == nil)
        let p = try #require(decodeProblem("\u{0B}" + seedRequest))  // vertical tab
        #expect([.malformedJSON, .invalidRequest].contains(p.kind))
        let q = try #require(decodeProblem(seedRequest + "\u{A0}"))   // no-break space after the value
        #expect([.malformedJSON, .invalidRequest].contains(q.kind))
    }
}
