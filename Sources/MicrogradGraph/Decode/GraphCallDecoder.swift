#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Micrograd

/// The body of `POST /graphs/{gid}/evaluate`: new values for some leaves (a number, or one number per row),
/// which gradients to return, and whether to sum them over the rows.
public struct GraphCall: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case number(Double)
        case rows([Double])
    }

    /// In request order.
    public var values: [(name: String, value: Value)] = []
    /// Leaf ids, in request order; nil when the request has no "gradients".
    public var gradients: [String]?
    public var reduction: BatchReduction = .none

    public init() {}

    /// A batch when any value is an array.
    public var isBatch: Bool { values.contains { if case .rows = $0.value { true } else { false } } }

    public static func == (l: GraphCall, r: GraphCall) -> Bool {
        l.values.map(\.name) == r.values.map(\.name) && l.values.map(\.value) == r.values.map(\.value)
            && l.gradients == r.gradients && l.reduction == r.reduction
    }
}

/// Reads a ``GraphCall`` with the same strict JSON scanner as graph requests. Shape errors are 400 with a JSON
/// pointer (`/values/x1`, `/values/x1/3`, `/gradients/0`, `/reduce`); an empty array and an unknown `reduce`
/// are 422. Which ids are leaves is the caller's question (it has the graph).
public enum GraphCallDecoder {
    public static func decode(_ body: [UInt8]) throws(Problem) -> GraphCall {
        try decode(body, pool: .shared)
    }

    /// `pool`: the threads long arrays are read by (the call is the same with any pool, or none).
    static func decode(_ body: [UInt8], pool: WorkerPool?) throws(Problem) -> GraphCall {
        if body.isEmpty { return GraphCall() }  // no body: evaluate at the registered values
        let result: Result<GraphCall, Problem> = body.withUnsafeBufferPointer { buffer in
            var reader = Reader(s: JSONScanner(base: buffer.baseAddress!, count: buffer.count))
            reader.pool = pool
            defer { reader.s.release() }
            do throws(ScanError) {
                try reader.readDocument()
            } catch {
                let detail = "\(error.message) (at byte \(error.offset))"
                return .failure(error.outOfRange ? .invalidRequest(detail, pointer: reader.pointer)
                                                 : .malformedJSON(detail, pointer: reader.pointer))
            }
            if let problem = reader.problem { return .failure(problem) }
            return .success(reader.call)
        }
        return try result.get()
    }

    /// An expression-form `POST /evaluate` request that is a batch (some value an array, or "gradients" or "reduce"
    /// given): its expression, output and call.
    /// nil for anything else (graph form, no arrays, or a request the ordinary decoder should word the error for),
    /// which then takes the ordinary path. A batch with a bad member throws that member's problem.
    public static func expressionBatch(_ body: [UInt8]) throws(Problem) -> (expression: String, output: String?, call: GraphCall)? {
        guard !body.isEmpty else { return nil }
        let result: Result<(String, String?, GraphCall)?, Problem> = body.withUnsafeBufferPointer { buffer in
            var reader = Reader(s: JSONScanner(base: buffer.baseAddress!, count: buffer.count))
            reader.acceptsExpression = true
            defer { reader.s.release() }
            do throws(ScanError) {
                try reader.readDocument()
            } catch {
                return .success(nil)  // malformed: the ordinary decoder says where
            }
            // Arrays, "gradients" or "reduce" make an expression-form request a batch.
            guard reader.sawArray || reader.call.gradients != nil || reader.sawReduce, !reader.foreign,
                  let expression = reader.expression
            else { return .success(nil) }
            if let problem = reader.problem { return .failure(problem) }
            return .success((expression, reader.output, reader.call))
        }
        return try result.get()
    }

    struct Reader {
        var s: JSONScanner
        /// Reads long arrays of plain numbers in parts (`parallelRows`); nil: one thread.
        var pool: WorkerPool?
        var call = GraphCall()
        var problem: Problem?
        var pointer = ""
        /// Expression-form batches: an "expression" member is read; any member of the graph form or unknown marks
        /// the request as not ours (`foreign`).
        var acceptsExpression = false
        var expression: String?
        var output: String?
        var foreign = false
        var sawArray = false
        var sawReduce = false
        /// The length of the arrays of rows read so far (-1 before the first, 0 once two differed).
        var columnLength = -1

        mutating func record(_ p: Problem) { if problem == nil { problem = p } }

        mutating func readDocument() throws(ScanError) {
            guard try s.peek() == UInt8(ascii: "{") else {
                try s.skipValue()
                try expectEnd()
                record(.invalidRequest("the request body must be a JSON object", pointer: ""))
                return
            }
            var seen = Set<String>()
            if try !s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
                repeat {
                    let name = String(decoding: try s.readKey(), as: UTF8.self)
                    pointer = "/" + JSONPointer.escape(name)
                    if !seen.insert(name).inserted {
                        record(.invalidRequest("duplicate member \"\(name)\"", pointer: pointer))
                        try s.skipValue()
                        continue
                    }
                    switch name {
                    case "values": try readValues()
                    case "gradients": try readGradients()
                    case "reduce": try readReduce()
                    case "expression" where acceptsExpression:
                        if try s.peek() == UInt8(ascii: "\"") {
                            expression = String(decoding: try s.readString(), as: UTF8.self)
                        } else {
                            foreign = true
                            try s.skipValue()
                        }
                    case "output" where acceptsExpression:
                        if try s.peek() == UInt8(ascii: "\"") {
                            output = String(decoding: try s.readString(), as: UTF8.self)
                        } else {
                            foreign = true
                            try s.skipValue()
                        }
                    default:
                        foreign = true
                        // Not an expression batch (a graph form's "nodes", say): stop here, unread.
                        if acceptsExpression { throw ScanError(message: "not an expression batch", offset: s.pos) }
                        record(.invalidRequest(
                            "unknown member \"\(name)\"; an evaluation has \"values\", \"gradients\" and \"reduce\"",
                            pointer: pointer))
                        try s.skipValue()
                    }
                } while try s.nextMember(close: UInt8(ascii: "}"))
            }
            pointer = ""
            try expectEnd()
        }

        mutating func expectEnd() throws(ScanError) {
            s.skipWhitespace()
            guard s.pos == s.end else { throw s.error("unexpected content after the JSON value") }
        }

        mutating func readValues() throws(ScanError) {
            guard try s.peek() == UInt8(ascii: "{") else {
                record(.invalidRequest("\"values\" must be an object mapping leaf ids to numbers or arrays of numbers",
                                       pointer: "/values"))
                return try s.skipValue()
            }
            if try s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) { return }
            var seen = Set<String>()
            repeat {
                let name = String(decoding: try s.readKey(), as: UTF8.self)
                pointer = "/values/" + JSONPointer.escape(name)
                if !seen.insert(name).inserted {
                    record(.invalidRequest("duplicate leaf \"\(name)\" in \"values\"", pointer: pointer))
                    try s.skipValue()
                    continue
                }
                if try s.peek() == UInt8(ascii: "[") {
                    if let rows = try readRows(name) { call.values.append((name, .rows(rows))) }
                } else if let v = try readNumberOrNonFinite() {
                    call.values.append((name, .number(v)))
                } else {
                    record(.invalidRequest(
                        "the value of \"\(name)\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\") or an array of them",
                        pointer: pointer))
                }
            } while try s.nextMember(close: UInt8(ascii: "}"))
        }

        mutating func readRows(_ name: String) throws(ScanError) -> [Double]? {
            let base = pointer
            sawArray = true
            if try s.open(UInt8(ascii: "["), close: UInt8(ascii: "]")) {
                record(.invalidValues("the rows of \"\(name)\" are empty; a batch has at least one row", pointer: base))
                return nil
            }
            if let pool, pool.width > 1, s.end - s.pos >= Self.parallelMinimum, let rows = parallelRows(pool) {
                columnLength = columnLength < 0 ? rows.count : columnLength == rows.count ? columnLength : 0
                return rows
            }
            var rows: [Double] = []
            // Columns of a batch have one length: the first one's sizes the others (no regrowth copies). Each
            // row takes at least 2 bytes of what is left; and after a column of another length (an error to be
            // reported) nothing more is reserved, so a request cannot make this reserve more than it sends.
            rows.reserveCapacity(max(0, min(columnLength, (s.end - s.pos) / 2)))
            var ok = true
            while true {
                let c = try s.peek()
                if c == UInt8(ascii: "-") || s.isDigit(c) {
                    rows.append(try s.readNumber())  // the common case, without the Optional of the general one
                    if s.pos < s.end && s.base[s.pos] == UInt8(ascii: ",") {
                        s.pos += 1  // and the common separator, without a second look past whitespace
                        continue
                    }
                } else if let v = try readNumberOrNonFinite() {
                    rows.append(v)
                } else {
                    if ok {
                        record(.invalidRequest(
                            "row \(rows.count) of \"\(name)\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\")",
                            pointer: base + "/\(rows.count)"))
                    }
                    ok = false
                    rows.append(0)
                }
                if try !s.nextMember(close: UInt8(ascii: "]")) { break }
            }
            columnLength = columnLength < 0 ? rows.count : columnLength == rows.count ? columnLength : 0
            return ok ? rows : nil
        }

        /// Arrays from this many bytes on (~30k short numbers, ~1 ms of one thread) are read in parts by the
        /// worker pool; below it, handing work over would cost more than it saves.
        static let parallelMinimum = 256 << 10

        /// The array at `s.pos` (just past its `[`) when it holds only numbers (and whitespace), read in parts by
        /// `pool`'s threads, `s.pos` then past its `]`; nil (nothing consumed) for anything else, which the
        /// one-thread path then reads and reports on. The array ends at the first `]` (a number has none: any other
        /// content fails a part); parts are cut after commas, so each number is read whole by the same code as on
        /// one thread, and the parts joined in order: the rows do not depend on the cuts or the threads.
        mutating func parallelRows(_ pool: WorkerPool) -> [Double]? {
            let start = s.pos
            guard let close = memchr(s.base + start, Int32(UInt8(ascii: "]")), s.end - start) else { return nil }
            let end = UnsafePointer<UInt8>(close.assumingMemoryBound(to: UInt8.self)) - s.base
            guard end - start >= Self.parallelMinimum else { return nil }
            // Many small parts (32 KiB, ~0.1 ms): see `ByteWriter.parallelNumbers`.
            let parts = min(pool.width * 16, (end - start) / (32 << 10), 64)
            // Part k reads from cuts[k] to cuts[k + 1] (a comma, or the `]`); cuts[0] is the first number.
            var cutAt = [Int](repeating: end, count: parts + 1)
            cutAt[0] = start
            for k in 1..<parts {
                let from = max(cutAt[k - 1], start + (end - start) / parts * k)
                guard let comma = memchr(s.base + from, Int32(UInt8(ascii: ",")), end - from) else { break }
                cutAt[k] = UnsafePointer<UInt8>(comma.assumingMemoryBound(to: UInt8.self)) - s.base + 1
            }
            let base = s.base, count = s.end, cuts = cutAt
            let read = UnsafeMutablePointer<Column<Double>?>.allocate(capacity: parts)
            read.initialize(repeating: nil, count: parts)
            defer {
                for k in 0..<parts { read[k]?.release() }
                read.deinitialize(count: parts)
                read.deallocate()
            }
            pool.run(parts) { k in
                read[k] = Self.numbers(base: base, count: count, from: cuts[k], to: k + 1 < parts ? cuts[k + 1] - 1 : end)
            }
            var total = 0
            for k in 0..<parts {
                guard let part = read[k] else { return nil }
                total += part.count
            }
            guard total > 0 else { return nil }
            let rows = [Double](unsafeUninitializedCapacity: total) { buffer, initialized in
                var at = buffer.baseAddress!
                for k in 0..<parts {
                    let part = read[k]!
                    at.initialize(from: part.base, count: part.count)
                    at += part.count
                }
                initialized = total
            }
            s.pos = end + 1
            return rows
        }

        /// The numbers between `from` and `to` (a `,` or `]`, excluded), separated by commas, whitespace around;
        /// nil for anything else (an empty part included). The scanner sees the whole body, so a number is read
        /// exactly as the one-thread path reads it.
        static func numbers(base: UnsafePointer<UInt8>, count: Int, from: Int, to: Int) -> Column<Double>? {
            var s = JSONScanner(base: base, count: count)
            s.pos = from
            var out = Column<Double>(capacity: (to - from) / 8)
            while true {
                s.skipWhitespace()
                guard s.pos < to, s.base[s.pos] == UInt8(ascii: "-") || s.isDigit(s.base[s.pos]) else { break }
                do throws(ScanError) { out.append(try s.readNumber()) } catch { break }
                // `to` is a `,` or `]` within the body, and a number stops before it: base[pos] is readable.
                if s.base[s.pos] == UInt8(ascii: ","), s.pos < to {
                    s.pos += 1  // the common separator, without the whitespace checks
                    continue
                }
                s.skipWhitespace()
                if s.pos == to { return out }
                guard s.base[s.pos] == UInt8(ascii: ",") else { break }
                s.pos += 1
            }
            out.release()
            return nil
        }

        mutating func readGradients() throws(ScanError) {
            guard try s.peek() == UInt8(ascii: "[") else {
                record(.invalidRequest("\"gradients\" must be an array of leaf ids", pointer: "/gradients"))
                return try s.skipValue()
            }
            var ids: [String] = []
            if try !s.open(UInt8(ascii: "["), close: UInt8(ascii: "]")) {
                repeat {
                    if try s.peek() == UInt8(ascii: "\"") {
                        ids.append(String(decoding: try s.readString(), as: UTF8.self))
                    } else {
                        record(.invalidRequest("\"gradients\" must hold leaf ids (strings)", pointer: "/gradients/\(ids.count)"))
                        try s.skipValue()
                        ids.append("")
                    }
                } while try s.nextMember(close: UInt8(ascii: "]"))
            }
            call.gradients = ids
        }

        mutating func readReduce() throws(ScanError) {
            sawReduce = true
            guard try s.peek() == UInt8(ascii: "\"") else {
                record(.invalidRequest("\"reduce\" must be a string (\"sum\")", pointer: "/reduce"))
                return try s.skipValue()
            }
            let text = try s.readString()
            if text.elementsEqual("sum".utf8) {
                call.reduction = .sum
            } else {
                record(.invalidValues("\"reduce\" can only be \"sum\"; got \"\(String(decoding: text, as: UTF8.self))\"",
                                      pointer: "/reduce"))
            }
        }

        /// A number, or "NaN", "Infinity", "-Infinity"; nil (value skipped) for anything else.
        mutating func readNumberOrNonFinite() throws(ScanError) -> Double? {
            let c = try s.peek()
            if c == UInt8(ascii: "-") || s.isDigit(c) { return try s.readNumber() }
            if c == UInt8(ascii: "\"") {
                let text = try s.readString()
                if text.elementsEqual("NaN".utf8) { return .nan }
                if text.elementsEqual("Infinity".utf8) { return .infinity }
                if text.elementsEqual("-Infinity".utf8) { return -.infinity }
                return nil
            }
            try s.skipValue()
            return nil
        }
    }
}
