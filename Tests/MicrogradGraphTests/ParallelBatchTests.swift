import Foundation
@testable import Micrograd
import Synchronization
import Testing

@testable import MicrogradGraph

/// Long batch columns are read and written by the worker pool's threads in parts: the bytes and the values must
/// not depend on the pool (its width sets the cuts), and anything but plain numbers must take the one-thread path
/// with its exact errors.
@Suite("Parallel batch columns")
struct ParallelBatchTests {
    /// No pool, then pools of 1, 2, 3, 4 and 8 threads (started once for the suite).
    static let pools: [WorkerPool?] = [nil] + [0, 1, 2, 3, 7].map { WorkerPool(helpers: $0) }

    /// Values of every kind the answer holds: short and long fractions, integers, tiny and huge, -0, non-finite.
    static func values(_ n: Int, seed: UInt64) -> [Double] {
        var random = SplitMix64(seed: seed)
        return (0..<n).map { k in
            let bits = random.next()
            switch k % 7 {
            case 0: return Double(bitPattern: bits)  // any double (NaN and infinities included)
            case 1: return Double(Int32(truncatingIfNeeded: bits))
            case 2: return -0.0
            case 3: return Double(Int64(bitPattern: bits) >> 11) / Double(1 << (bits & 15))
            case 4: return k % 1000 == 4 ? .infinity : tanh(Double(Int64(bitPattern: bits)) / 1e18)
            default: return (Double(bits % 6_000_000) - 3_000_000) / 1e6
            }
        }
    }

    /// `write` into exactly `bytes` of room followed by a canary: the text, and whether the canary is intact.
    static func written(bytes: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int) -> (text: [UInt8], withinRoom: Bool) {
        var buffer = [UInt8](repeating: 0xAA, count: bytes + 64)
        let n = buffer.withUnsafeMutableBufferPointer { write($0.baseAddress!) }
        return (Array(buffer[..<n]), buffer[bytes...].allSatisfy { $0 == 0xAA })
    }

    @Test(arguments: [1, 4095, 4096, 16_384, 50_001, 131_072])
    func numbersWrittenInPartsAreTheOneThreadBytes(count: Int) {
        let values = Self.values(count, seed: UInt64(count))
        let expected = values.withUnsafeBufferPointer { v in
            Self.written(bytes: count * (ShortestDecimal.maxLength + 1) + ShortestDecimal.room) {
                ByteWriter.numbers(v, to: $0)
            }
        }
        #expect(expected.withinRoom)
        for pool in Self.pools.compactMap({ $0 }) {
            let parallel = values.withUnsafeBufferPointer { v in
                Self.written(bytes: ByteWriter.parts(count, pool: pool).bytes) {
                    ByteWriter.parallelNumbers(v, to: $0, pool: pool)
                }
            }
            #expect(parallel.text == expected.text, "\(pool.width) threads")
            #expect(parallel.withinRoom, "\(pool.width) threads")
        }
    }

    /// Every number the longest text there is: the bounds are exact there.
    @Test func longestNumbersStayWithinTheBound() {
        let values = [Double](repeating: -Double.leastNormalMagnitude, count: 20_000)
        #expect("\(values[0])".utf8.count == ShortestDecimal.maxLength)
        let one = values.withUnsafeBufferPointer { v in
            Self.written(bytes: v.count * (ShortestDecimal.maxLength + 1) + ShortestDecimal.room) { ByteWriter.numbers(v, to: $0) }
        }
        #expect(one.withinRoom)
        #expect(one.text.count == values.count * (ShortestDecimal.maxLength + 1) - 1)
        for pool in Self.pools.compactMap({ $0 }) {
            let parallel = values.withUnsafeBufferPointer { v in
                Self.written(bytes: ByteWriter.parts(v.count, pool: pool).bytes) { ByteWriter.parallelNumbers(v, to: $0, pool: pool) }
            }
            #expect(parallel.text == one.text && parallel.withinRoom, "\(pool.width) threads")
        }
    }

    @Test func batchAnswersAreTheSameBytesWithAnyPool() {
        let rows = 40_000
        let columns = (0..<4).map { Self.values(rows, seed: 7 + UInt64($0)) }
        let result = BatchResult(rows: rows, gradientCount: 3, reduction: .none, storage: columns.flatMap { $0 },
                                 blockRows: 256, workingBytes: 0)
        let answers = Self.pools.map { pool in
            BatchEncoder.json(graphID: "g", outputID: "out", gradientIDs: ["a", "b\"", "a"], result: result, pool: pool)
        }
        for answer in answers.dropFirst() { #expect(answer == answers[0]) }
        #expect(answers[0].count > rows * 4 * 10)
    }

    /// Requests at the same time share the pool: each caller's job gets its own parts back, whichever threads ran them.
    @Test func concurrentCallersGetTheirOwnBytes() {
        let pool = WorkerPool(helpers: 2)
        let results = (0..<6).map { k in
            BatchResult(rows: 20_000 + k, gradientCount: 1, reduction: .none,
                        storage: Self.values(2 * (20_000 + k), seed: 100 + UInt64(k)), blockRows: 256, workingBytes: 0)
        }
        let expected = results.map { BatchEncoder.json(graphID: nil, outputID: "y", gradientIDs: ["x"], result: $0, pool: nil) }
        let answers = Mutex([[UInt8]](repeating: [], count: results.count * 3))
        DispatchQueue.concurrentPerform(iterations: results.count * 3) { i in
            let answer = BatchEncoder.json(graphID: nil, outputID: "y", gradientIDs: ["x"], result: results[i % results.count],
                                           pool: pool)
            answers.withLock { $0[i] = answer }
        }
        answers.withLock { answers in
            for (i, answer) in answers.enumerated() { #expect(answer == expected[i % results.count], "call \(i)") }
        }
    }

    /// `{"values": {...}}` with the given member texts.
    static func body(_ members: [(String, String)]) -> [UInt8] {
        Array(("{\"values\": {" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}}").utf8)
    }

    /// A long array of numbers as the request text, with `tamper` applied to the text of row `at`.
    static func column(_ values: [Double], separator: String = ",", at: Int = -1, _ tamper: (String) -> String = { $0 })
        -> String
    {
        "[" + values.enumerated().map { k, v in
            let text = v.isFinite ? v.description : "0"
            return k == at ? tamper(text) : text
        }.joined(separator: separator) + "]"
    }

    func decoded(_ body: [UInt8], pool: WorkerPool?) -> Result<GraphCall, Problem> {
        do throws(Problem) { return .success(try GraphCallDecoder.decode(body, pool: pool)) } catch { return .failure(error) }
    }

    func expectSameWithEveryPool(_ body: [UInt8], _ comment: Comment) {
        let expected = decoded(body, pool: nil)
        for pool in Self.pools.dropFirst() {
            #expect(decoded(body, pool: pool) == expected, "\(pool!.width) threads: \(comment)")
        }
    }

    @Test func longColumnsReadInPartsAreTheOneThreadValues() {
        let values = Self.values(60_000, seed: 3)
        let body = Self.body([("x1", Self.column(values)), ("x2", Self.column(values.reversed(), separator: " ,\n ")),
                              ("b", "2.5")])
        #expect(body.count > 2 * GraphCallDecoder.Reader.parallelMinimum)
        let expected = decoded(body, pool: nil)
        guard case .success(let call) = expected else { Issue.record("the body should decode: \(expected)"); return }
        #expect(call.values.count == 3)
        if case .rows(let rows) = call.values[0].value {
            #expect(rows.count == values.count)
            #expect(zip(rows, values).allSatisfy { $0 == ($1.isFinite ? $1 : 0) || ($0.isNaN && $1.isNaN) })
        } else {
            Issue.record("x1 should be rows")
        }
        expectSameWithEveryPool(body, "plain columns")
    }

    /// Every deviation from a plain list of numbers, anywhere in a long array (first row, middle, last row),
    /// gives what the one-thread reader gives: the same values, or the same problem (same detail and pointer).
    @Test func anythingButNumbersGivesTheOneThreadAnswer() {
        let values = Self.values(40_000, seed: 11)
        let tampers: [(String, (String) -> String)] = [
            ("an Infinity string", { _ in "\"Infinity\"" }),
            ("a string holding ] and ,", { _ in "\"a],b\"" }),
            ("a nested array", { _ in "[1, 2]" }),
            ("an empty element", { $0 + "," }),
            ("a leading zero", { _ in "012" }),
            ("out of range", { _ in "1e400" }),
            ("a plus sign", { "+" + $0 }),
            ("true", { _ in "true" }),
            ("an unterminated string", { _ in "\"abc" }),
            ("a bare minus", { _ in "-" }),
            ("a long exact number", { _ in "0.1000000000000000055511151231257827021181583404541015625" }),
            ("an exponent", { _ in "-2.5E-3" }),
        ]
        for (what, tamper) in tampers {
            for at in [0, 1, values.count / 2, values.count - 1] {
                expectSameWithEveryPool(Self.body([("x1", Self.column(values, at: at, tamper)), ("w1", "1")]), "\(what) at \(at)")
            }
        }
        // A trailing comma, a missing `]` (the next `]` is another member's), two columns of different lengths.
        let text = Self.column(values)
        expectSameWithEveryPool(Self.body([("x1", String(text.dropLast()) + ",]")]), "trailing comma")
        expectSameWithEveryPool(Self.body([("x1", String(text.dropLast())), ("x2", "[1]")]), "missing ]")
        expectSameWithEveryPool(Self.body([("x1", text), ("x2", Self.column(Array(values.dropLast())))]), "lengths")
        expectSameWithEveryPool(Array(Self.body([("x1", text)]).dropLast(3)), "truncated")
    }
}
