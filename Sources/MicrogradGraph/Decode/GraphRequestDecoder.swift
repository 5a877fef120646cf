import Micrograd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes a POST /evaluate body (graph form or expression form) into a validated, topologically sorted `GraphSpec`.
///
/// One pass over the bytes, specialised to the schema (Foundation's decoders are an order of magnitude slower
/// and JSONSerialization parses doubles inexactly). Errors: malformed JSON -> 400 malformed-json; well-formed but wrongly shaped -> 400
/// invalid-request; an unevaluable graph -> 422 invalid-graph; over a size limit -> 413. Each carries an RFC 6901
/// pointer into the request. A syntax error anywhere wins over a shape or graph error found earlier in the text.
public enum GraphRequestDecoder {
    public static func decode(_ body: [UInt8], limits: GraphLimits) throws(Problem) -> GraphSpec {
        guard !body.isEmpty else { throw Problem.malformedJSON("Empty body: expected a JSON object.", pointer: "") }
        if body.count >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
            throw Problem.malformedJSON("A byte order mark is not allowed in JSON (RFC 8259).", pointer: "")
        }
        return try body.withUnsafeBufferPointer { (buffer) throws(Problem) -> GraphSpec in
            var reader = GraphRequestReader(base: buffer.baseAddress!, count: buffer.count, limits: limits)
            defer { reader.release() }
            return try reader.read()
        }
    }
}

/// Where the reader is, so an error can carry a JSON pointer. Plain integers on the hot path; the pointer
/// String is only built when a problem is reported.
private struct ReadContext {
    enum Kind: UInt8 { case root, member, node, nodeMember, input, value }
    enum Member: UInt8 { case id, op, inputs, value, label, exponent, named }
    var kind = Kind.root
    var node = 0, input = 0
    var member = Member.named
    /// A top-level member, an unknown node member, or a "values" variable (set only on those rarer paths).
    var name = ""

    mutating func root() { kind = .root }
    mutating func member(_ n: String) { kind = .member; name = n }
    mutating func value(_ n: String) { kind = .value; name = n }
    mutating func node(_ i: Int) { kind = .node; node = i }
    mutating func nodeMember(_ i: Int, _ m: Member) { kind = .nodeMember; node = i; member = m }
    mutating func nodeMember(_ i: Int, named n: String) { kind = .nodeMember; node = i; member = .named; name = n }
    mutating func input(_ i: Int, _ j: Int) { kind = .input; node = i; input = j }

    var pointer: String {
        switch kind {
        case .root: return ""
        case .member: return "/" + JSONPointer.escape(name)
        case .node: return JSONPointer.node(node)
        case .nodeMember:
            let names = ["id", "op", "inputs", "value", "label", "exponent"]
            return JSONPointer.node(node, member == .named ? name : names[Int(member.rawValue)])
        case .input: return JSONPointer.input(node, input)
        case .value: return "/values/" + JSONPointer.escape(name)
        }
    }
}

private struct GraphRequestReader {
    var s: JSONScanner
    let limits: GraphLimits
    var context = ReadContext()
    /// The first shape/graph problem seen; reported once the whole text is known to be well-formed.
    var problem: Problem?

    // Ids, interned by bytes. Per symbol: the request node that defines it (-1 while only referenced),
    // and its first reference (for an "unknown id" pointer).
    var ids: IDTable
    var definedAt: Column<Int32>
    var firstUseNode: Column<Int32>
    var firstUseInput: Column<Int32>

    // Request nodes, in request order. Inputs are refs (see InputSlot): a symbol (>= 0), a literal, or absent.
    var nodeSymbol: Column<Int32>
    var nodeOp: Column<UInt8>  // Op raw values
    var nodeValue: Column<Double>
    var nodeLHS: Column<Int32>
    var nodeRHS: Column<Int32>
    /// Labels are rare: stored by node index only when present.
    var nodeLabel: [Int32: String] = [:]
    var constants: [Double] = []

    // Top-level members.
    var sawNodes = false, sawOutput = false, sawExpression = false, sawValues = false
    var output: [UInt8]?
    var expression: String?
    var values: [(name: String, value: Double)] = []

    init(base: UnsafePointer<UInt8>, count: Int, limits: GraphLimits) {
        s = JSONScanner(base: base, count: count)
        self.limits = limits
        // A node costs at least ~12 bytes of JSON; reserve for a dense request without over-reserving for a sparse one.
        let estimate = min(count / 48 + 16, limits.maxNodes + 16)
        // Small requests reuse this thread's buffers (they grow as needed): allocating and freeing the thirteen
        // of them was ~4,500 instructions of a 5-node request, 4% of its server-side work.
        if estimate <= DecoderBuffers.reusedEstimate, let kept = DecoderBuffers.takeCurrent() {
            ids = kept.ids
            definedAt = kept.definedAt; firstUseNode = kept.firstUseNode; firstUseInput = kept.firstUseInput
            nodeSymbol = kept.nodeSymbol; nodeOp = kept.nodeOp; nodeValue = kept.nodeValue
            nodeLHS = kept.nodeLHS; nodeRHS = kept.nodeRHS
            pending = kept.pending
            return
        }
        ids = IDTable(expectedCount: estimate)
        definedAt = Column(capacity: estimate); firstUseNode = Column(capacity: estimate); firstUseInput = Column(capacity: estimate)
        nodeSymbol = Column(capacity: estimate); nodeOp = Column(capacity: estimate); nodeValue = Column(capacity: estimate)
        nodeLHS = Column(capacity: estimate); nodeRHS = Column(capacity: estimate)
        pending = PendingIDs()
    }

    mutating func release() {
        s.release()
        // Kept for the next request on this thread unless a large one grew them.
        if ids.footprint <= DecoderBuffers.keptBytes && nodeValue.capacity <= DecoderBuffers.keptColumn
            && definedAt.capacity <= DecoderBuffers.keptColumn
        {
            ids.removeAll()
            definedAt.removeAll(); firstUseNode.removeAll(); firstUseInput.removeAll()
            nodeSymbol.removeAll(); nodeOp.removeAll(); nodeValue.removeAll(); nodeLHS.removeAll(); nodeRHS.removeAll()
            pending.count = 0
            if DecoderBuffers.keepCurrent(DecoderBuffers(
                ids: ids, definedAt: definedAt, firstUseNode: firstUseNode, firstUseInput: firstUseInput,
                nodeSymbol: nodeSymbol, nodeOp: nodeOp, nodeValue: nodeValue, nodeLHS: nodeLHS, nodeRHS: nodeRHS,
                pending: pending))
            {
                return
            }
        }
        ids.release()
        pending.release()
        definedAt.release(); firstUseNode.release(); firstUseInput.release()
        nodeSymbol.release(); nodeOp.release(); nodeValue.release(); nodeLHS.release(); nodeRHS.release()
    }

    /// Keeps the first problem (only error paths call this, so building the Problem eagerly costs nothing).
    mutating func record(_ p: Problem) {
        if problem == nil { problem = p }
    }

    // MARK: entry

    mutating func read() throws(Problem) -> GraphSpec {
        do {
            try readDocument()
        } catch {
            if error.outOfRange {
                throw Problem.invalidRequest("\(error.message) (at byte \(error.offset)).", pointer: context.pointer)
            }
            throw Problem.malformedJSON("\(error.message) (at byte \(error.offset)).", pointer: context.pointer)
        }
        if let problem { throw problem }
        if sawExpression && !sawNodes {
            return try ExpressionCompiler.compile(
                expression ?? "", values: values, output: output.map { String(decoding: $0, as: UTF8.self) }, limits: limits)
        }
        if sawNodes && sawExpression {
            throw Problem.invalidRequest("Give either \"nodes\" (graph form) or \"expression\", not both.", pointer: "/expression")
        }
        guard sawNodes else {
            throw Problem.invalidRequest("The request needs \"nodes\" (graph form) or \"expression\" (expression form).", pointer: "")
        }
        if sawValues {
            throw Problem.invalidRequest("\"values\" belongs to the expression form; graph leaves carry their own \"value\".", pointer: "/values")
        }
        return try build()
    }

    mutating func readDocument() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "{") else {
            try s.skipValue()
            try expectEnd()
            record(.invalidRequest("The request body must be a JSON object.", pointer: ""))
            return
        }
        if try !s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
            repeat {
                context.root()
                let key = try s.readKey()
                if key.equals("nodes") {
                    context.member("nodes")
                    if sawNodes { try duplicateMember("nodes"); continue }
                    sawNodes = true
                    try readNodes()
                } else if key.equals("output") {
                    context.member("output")
                    if sawOutput { try duplicateMember("output"); continue }
                    sawOutput = true
                    try readOutput()
                } else if key.equals("expression") {
                    context.member("expression")
                    if sawExpression { try duplicateMember("expression"); continue }
                    sawExpression = true
                    try readExpression()
                } else if key.equals("values") {
                    context.member("values")
                    if sawValues { try duplicateMember("values"); continue }
                    sawValues = true
                    try readValues()
                } else {
                    // Refused rather than ignored: a misspelt "output" would otherwise silently differentiate the last node.
                    let name = String(decoding: key, as: UTF8.self)
                    context.member(name)
                    record(.invalidRequest(
                        "Unknown member \"\(name)\"; a request has \"nodes\" and \"output\", or \"expression\" and \"values\".",
                        pointer: context.pointer))
                    try s.skipValue()
                }
            } while try s.nextMember(close: UInt8(ascii: "}"))
        }
        context.root()
        try expectEnd()
        flushIDs()
    }

    mutating func expectEnd() throws(ScanError) {
        s.skipWhitespace()
        guard s.pos == s.end else { throw s.error("Unexpected content after the JSON value") }
    }

    mutating func duplicateMember(_ name: String) throws(ScanError) {
        record(.invalidRequest("Duplicate member \"\(name)\".", pointer: context.pointer))
        try s.skipValue()
    }

    // MARK: top-level members

    mutating func readOutput() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"output\" must be a string (a node id).", pointer: "/output"))
            return try s.skipValue()
        }
        output = Array(try s.readString())
    }

    mutating func readExpression() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"expression\" must be a string.", pointer: "/expression"))
            return try s.skipValue()
        }
        let text = try s.readString()
        if let problem = limits.expressionSizeProblem(byteCount: text.count) {
            record(problem)
            return
        }
        expression = String(decoding: text, as: UTF8.self)
    }

    mutating func readValues() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "{") else {
            record(.invalidRequest("\"values\" must be an object mapping variable names to numbers.", pointer: "/values"))
            return try s.skipValue()
        }
        if try s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) { return }
        var seen = Set<String>()
        repeat {
            let name = String(decoding: try s.readKey(), as: UTF8.self)
            context.value(name)
            if !seen.insert(name).inserted {
                record(.invalidRequest("Duplicate variable \"\(name)\" in \"values\".", pointer: context.pointer))
                try s.skipValue()
                continue
            }
            if let v = try readNumberOrNonFinite() {
                values.append((name, v))
            } else {
                record(.invalidRequest("The value of \"\(name)\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\").",
                                       pointer: context.pointer))
            }
        } while try s.nextMember(close: UInt8(ascii: "}"))
    }

    /// A number, or one of the strings "NaN", "Infinity", "-Infinity" (protobuf's JSON mapping).
    /// Returns nil (value skipped) for anything else.
    mutating func readNumberOrNonFinite() throws(ScanError) -> Double? {
        let c = try s.peek()
        if c == UInt8(ascii: "-") || s.isDigit(c) { return try s.readNumber() }
        if c == UInt8(ascii: "\"") {
            let text = try s.readString()
            if text.equals("NaN") { return .nan }
            if text.equals("Infinity") { return .infinity }
            if text.equals("-Infinity") { return -.infinity }
            return nil
        }
        try s.skipValue()
        return nil
    }

    // MARK: nodes

    mutating func readNodes() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "[") else {
            record(.invalidRequest("\"nodes\" must be an array of node objects.", pointer: "/nodes"))
            return try s.skipValue()
        }
        if try s.open(UInt8(ascii: "["), close: UInt8(ascii: "]")) { return }
        var index = 0
        repeat {
            try readNode(index)
            index += 1
        } while try s.nextMember(close: UInt8(ascii: "]"))
    }

    /// Which optional node members were seen, to reject duplicates.
    struct Seen: OptionSet {
        let rawValue: UInt8
        static let id = Seen(rawValue: 1), op = Seen(rawValue: 2), inputs = Seen(rawValue: 4)
        static let value = Seen(rawValue: 8), label = Seen(rawValue: 16), exponent = Seen(rawValue: 32)
    }

    mutating func readNode(_ i: Int) throws(ScanError) {
        context.node(i)
        var opName: OpName?
        var value: Double?
        var exponent: Double?
        var label: String?
        var inputCount = 0
        var seen: Seen = []
        // Placeholders first: the id and inputs are filled in when the batch of pending ids is interned.
        nodeSymbol.append(-1); nodeOp.append(Op.leaf.rawValue); nodeValue.append(0)
        nodeLHS.append(InputSlot.absent); nodeRHS.append(InputSlot.absent)
        guard try s.peek() == UInt8(ascii: "{") else {
            record(.invalidRequest("A node must be an object.", pointer: context.pointer))
            return try s.skipValue()
        }
        if try !s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
            repeat {
                let key = try s.readKey()
                if key.equals("id") {
                    context.nodeMember(i, .id)
                    if try duplicate(.id, &seen) { continue }
                    try readNodeID(i)
                } else if key.equals("op") {
                    context.nodeMember(i, .op)
                    if try duplicate(.op, &seen) { continue }
                    opName = try readOpName()
                } else if key.equals("inputs") {
                    context.nodeMember(i, .inputs)
                    if try duplicate(.inputs, &seen) { continue }
                    inputCount = try readInputs(i)
                } else if key.equals("value") {
                    context.nodeMember(i, .value)
                    if try duplicate(.value, &seen) { continue }
                    value = try readNumberOrNonFinite()
                    if value == nil {
                        record(.invalidRequest("\"value\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\").",
                                               pointer: context.pointer))
                    }
                } else if key.equals("label") {
                    context.nodeMember(i, .label)
                    if try duplicate(.label, &seen) { continue }
                    label = try readLabel()
                } else if key.equals("exponent") {
                    context.nodeMember(i, .exponent)
                    if try duplicate(.exponent, &seen) { continue }
                    exponent = try readNumberOrNonFinite()
                    if exponent == nil {
                        record(.invalidRequest("\"exponent\" must be a number.", pointer: context.pointer))
                    }
                } else {
                    let name = String(decoding: key, as: UTF8.self)
                    context.nodeMember(i, named: name)
                    record(.invalidRequest(
                        "Unknown member \"\(name)\"; a node has \"id\", \"label\", and \"value\" or \"op\", \"inputs\", \"exponent\".",
                        pointer: context.pointer))
                    try s.skipValue()
                }
            } while try s.nextMember(close: UInt8(ascii: "}"))
        }
        context.node(i)
        if !seen.contains(.id) {
            record(.invalidRequest("A node needs an \"id\" (a string).", pointer: context.pointer))
        }
        nodeValue[i] = value ?? exponent ?? 0
        if let label { nodeLabel[Int32(i)] = label }
        nodeOp[i] = resolveOp(i, opName, seen: seen, inputCount: inputCount).rawValue
        if nodeOp.count + constants.count > limits.maxNodes {
            record(.invalidGraph("The graph has more than \(limits.maxNodes) nodes (node cap), counting constant inputs.",
                                 pointer: context.pointer))
        }
    }

    /// Checks a node member for a repeat; a repeated member is recorded and its value skipped (returns true).
    mutating func duplicate(_ member: Seen, _ seen: inout Seen) throws(ScanError) -> Bool {
        if seen.contains(member) {
            record(.invalidRequest("Duplicate member in a node.", pointer: context.pointer))
            try s.skipValue()
            return true
        }
        seen.insert(member)
        return false
    }

    mutating func readNodeID(_ i: Int) throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"id\" must be a string.", pointer: context.pointer))
            return try s.skipValue()
        }
        let bytes = try s.readString()
        if bytes.isEmpty || isTooLong(bytes) {
            let detail = bytes.isEmpty
                ? "An id must not be empty."
                : "An id is \(characterCount(bytes)) characters; the limit is \(limits.maxIDLength)."
            record(.invalidGraph(detail, pointer: context.pointer))
            return
        }
        queueID(bytes, node: i, input: -1)
    }

    // MARK: interning ids in batches

    /// Ids waiting to be interned, in document order: fixed buffers (no Array bookkeeping per id).
    var pending: PendingIDs

    /// Queues an id occurrence (`input` -1: the node's own id). Ids are interned `PendingIDs.capacity` at a time so
    /// their table misses overlap (see `IDTable.warm`). Bytes decoded from escapes live in the scanner's scratch
    /// buffer, which the next string overwrites: those are interned at once.
    @inline(__always)
    mutating func queueID(_ bytes: UnsafeBufferPointer<UInt8>, node: Int, input: Int) {
        let p = bytes.baseAddress!
        pending.append(p, count: bytes.count, hash: IDTable.hash(bytes), node: node, input: input)
        if pending.count == PendingIDs.capacity || !(p >= s.base && p < s.base + s.end) { flushIDs() }
    }

    mutating func flushIDs() {
        let n = pending.count
        guard n > 0 else { return }
        ids.warm(UnsafeBufferPointer(start: pending.hash, count: n))
        for k in 0..<n {
            let key = UnsafeBufferPointer(start: pending.key[k], count: Int(pending.length[k]))
            let (symbol, isNew) = ids.intern(key, hash: pending.hash[k])
            let i = Int(pending.node[k]), j = Int(pending.input[k])
            if j < 0 {
                nodeSymbol[i] = symbol
                if isNew {
                    definedAt.append(Int32(i)); firstUseNode.append(-1); firstUseInput.append(-1)
                } else if definedAt[Int(symbol)] >= 0 {
                    record(.invalidGraph("Duplicate id \"\(ids.string(symbol))\" (first defined at \(JSONPointer.node(Int(definedAt[Int(symbol)])))).",
                                         pointer: JSONPointer.node(i, "id")))
                } else {
                    definedAt[Int(symbol)] = Int32(i)
                }
            } else {
                if isNew { definedAt.append(-1); firstUseNode.append(Int32(i)); firstUseInput.append(Int32(j)) }
                if j == 0 { nodeLHS[i] = symbol } else if j == 1 { nodeRHS[i] = symbol }
            }
        }
        pending.count = 0
    }

    mutating func readLabel() throws(ScanError) -> String? {
        if try s.peek() == UInt8(ascii: "\"") {
            let bytes = try s.readString()
            if isTooLong(bytes) {
                record(.invalidGraph("A label is \(characterCount(bytes)) characters; the limit is \(limits.maxIDLength).",
                                     pointer: context.pointer))
                return nil
            }
            return String(decoding: bytes, as: UTF8.self)
        } else {
            try s.skipValue()
        }
        record(.invalidRequest("\"label\" must be a string.", pointer: context.pointer))
        return nil
    }

    /// Reads an `inputs` array; keeps the first two refs (ids through the pending batch), returns how many there were.
    mutating func readInputs(_ i: Int) throws(ScanError) -> Int {
        guard try s.peek() == UInt8(ascii: "[") else {
            record(.invalidRequest("\"inputs\" must be an array of node ids or numbers.", pointer: context.pointer))
            try s.skipValue()
            return 0
        }
        if try s.open(UInt8(ascii: "["), close: UInt8(ascii: "]")) { return 0 }
        var j = 0
        repeat {
            context.input(i, j)
            if let constant = try readInputRef(i, j) {
                if j == 0 { nodeLHS[i] = constant } else if j == 1 { nodeRHS[i] = constant }
            }
            j += 1
        } while try s.nextMember(close: UInt8(ascii: "]"))
        context.nodeMember(i, .inputs)
        return j
    }

    /// Over the id/label limit, counted in characters like JSON Schema's maxLength (bytes only when it could matter).
    func isTooLong<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.count > limits.maxIDLength && characterCount(bytes) > limits.maxIDLength
    }

    /// Unicode scalars in valid UTF-8: every byte that does not continue a sequence starts one.
    func characterCount<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    /// A literal's ref (`InputSlot.constantRef`) for a number literal; nil for an id (queued) or an invalid input (recorded).
    mutating func readInputRef(_ i: Int, _ j: Int) throws(ScanError) -> Int32? {
        let c = try s.peek()
        if c == UInt8(ascii: "\"") {
            let bytes = try s.readString()
            if isTooLong(bytes) {
                record(.invalidGraph("Unknown id (longer than any id may be: \(limits.maxIDLength) characters).",
                                     pointer: context.pointer))
                return nil
            }
            queueID(bytes, node: i, input: j)
            return nil
        }
        if c == UInt8(ascii: "-") || s.isDigit(c) {
            // A number literal: a constant leaf of its own.
            constants.append(try s.readNumber())
            if nodeOp.count + 1 + constants.count > limits.maxNodes {
                record(.invalidGraph("The graph has more than \(limits.maxNodes) nodes (node cap), counting constant inputs.",
                                     pointer: context.pointer))
            }
            return InputSlot.constantRef(constants.count - 1)
        }
        record(.invalidRequest("An input must be a node id (string) or a number.", pointer: context.pointer))
        try s.skipValue()
        return nil
    }

    // MARK: ops

    typealias OpName = OpVocabulary.Named

    mutating func readOpName() throws(ScanError) -> OpName? {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"op\" must be a string.", pointer: context.pointer))
            try s.skipValue()
            return nil
        }
        let name = try s.readString()
        guard let op = OpVocabulary.named(name) else {
            let text = String(decoding: name.prefix(64), as: UTF8.self)
            record(.invalidGraph(
                "Unknown op \"\(text)\"; ops: \(OpVocabulary.names.joined(separator: " ")) "
                    + "(or \(OpVocabulary.symbols.joined(separator: " "))).",
                pointer: context.pointer))
            return nil
        }
        return op
    }

    /// Decides the node's op from what it carried, recording leaf/op/arity/exponent problems.
    mutating func resolveOp(_ i: Int, _ name: OpName?, seen: Seen, inputCount: Int) -> Op {
        guard let name else {
            if seen.contains(.op) { return .leaf }  // a non-string or unknown op: already recorded
            if !seen.contains(.value) {
                record(.invalidGraph("Missing value: a node is a leaf with a \"value\" or an op with \"op\" and \"inputs\".",
                                     pointer: JSONPointer.node(i)))
            } else if seen.contains(.inputs) {
                record(.invalidGraph("A leaf (a node with a value) takes no inputs.", pointer: JSONPointer.node(i, "inputs")))
            } else if seen.contains(.exponent) {
                record(.invalidGraph("\"exponent\" applies only to pow.", pointer: JSONPointer.node(i, "exponent")))
            }
            return .leaf
        }
        if seen.contains(.value) {
            record(.invalidGraph("An op node takes no \"value\" (its value is computed).", pointer: JSONPointer.node(i, "value")))
        }
        let op: Op
        switch name {
        case .op(let o):
            op = o
        case .minus:
            op = inputCount == 1 ? .neg : .sub
        case .pow:
            if seen.contains(.exponent) {
                if inputCount != 1 {
                    arityProblem(i, "pow with an \"exponent\" takes 1 input", inputCount, seen)
                }
                return .powConst
            }
            op = .pow
            if inputCount != 2 {
                arityProblem(i, "pow takes 1 input and an \"exponent\", or 2 inputs (base, exponent)", inputCount, seen)
                return op
            }
        }
        if op != .pow && seen.contains(.exponent) {
            record(.invalidGraph("\"exponent\" applies only to pow.", pointer: JSONPointer.node(i, "exponent")))
        }
        if inputCount != op.arity {
            let what = op.arity == 1 ? "1 input" : "\(op.arity) inputs"
            arityProblem(i, "\(op.name) takes \(what)", inputCount, seen)
        }
        return op
    }

    mutating func arityProblem(_ i: Int, _ rule: String, _ got: Int, _ seen: Seen) {
        let pointer = seen.contains(.inputs) ? JSONPointer.node(i, "inputs") : JSONPointer.node(i)
        record(.invalidGraph("Wrong arity: \(rule), got \(got).", pointer: pointer))
    }

    // MARK: building the spec

    mutating func build() throws(Problem) -> GraphSpec {
        let userCount = nodeOp.count
        guard userCount > 0 else { throw Problem.invalidGraph("The graph has no nodes.", pointer: "/nodes") }
        // Every referenced id must be defined; report the first reference in request order.
        if let unknown = definedAt.firstIndex(where: { $0 < 0 }) {
            throw Problem.invalidGraph("Unknown id \"\(ids.string(Int32(unknown)))\": no node has this id.",
                                       pointer: JSONPointer.input(Int(firstUseNode[unknown]), Int(firstUseInput[unknown])))
        }
        var outputNode = Int32(userCount - 1)
        if let output {
            let symbol = output.withUnsafeBufferPointer { ids.find($0) }
            guard symbol >= 0, definedAt[Int(symbol)] >= 0 else {
                let text = String(decoding: output.prefix(4 * limits.maxIDLength), as: UTF8.self)
                throw Problem.invalidGraph("\"output\" names unknown id \"\(text)\".", pointer: "/output")
            }
            outputNode = definedAt[Int(symbol)]
        }

        // Inputs as node indices: request nodes first, then constants in request order.
        let total = userCount + constants.count
        var lhs = [Int32].filled(with: InputSlot.absent, count: total)
        var rhs = [Int32].filled(with: InputSlot.absent, count: total)
        let defined = definedAt
        for i in 0..<userCount {
            lhs[i] = InputSlot.specIndex(ofRef: nodeLHS[i], definedAt: defined, userCount: userCount)
            rhs[i] = InputSlot.specIndex(ofRef: nodeRHS[i], definedAt: defined, userCount: userCount)
        }
        let order: [Int32]?
        switch TopologicalOrder.sort(lhs: lhs, rhs: rhs) {
        case .success(let o): order = o
        case .failure(let cycle): throw cycleProblem(cycle)
        }

        // In a function of its own that cannot throw: built at the end of this one, the spec was copied into the
        // (typed-throws) result and the original destroyed, a retain and a release of every column.
        return assemble(total: total, userCount: userCount, lhs: lhs, rhs: rhs, order: order, outputNode: outputNode)
    }

    /// The spec's columns, whole at once (one allocation each); an already-sorted request needs no remapping.
    private func assemble(
        total: Int, userCount: Int, lhs: [Int32], rhs: [Int32], order: [Int32]?, outputNode: Int32
    ) -> GraphSpec {
        let constantIDs = generatedConstantIDs()
        let labels = nodeLabel
        let opCodes = nodeOp, symbols = nodeSymbol, nodeValues = nodeValue
        let table = ids
        let constantValues = constants
        func column<T>(_ f: (Int) -> T) -> [T] {
            guard let order else { return (0..<total).map(f) }
            return order.map { f(Int($0)) }
        }
        let specIDs = column { n in n < userCount ? table.string(symbols[n]) : constantIDs[n - userCount] }
        let specLabels = labels.isEmpty ? [String?].filled(with: nil, count: total) : column { labels[Int32($0)] }
        let specOps = column { n in n < userCount ? Op(rawValue: opCodes[n])! : .leaf }
        let specValues = column { n in n < userCount ? nodeValues[n] : constantValues[n - userCount] }
        let specIsConstant = column { $0 >= userCount }
        guard let order else {
            return GraphSpec(ids: specIDs, labels: specLabels, ops: specOps, lhs: lhs, rhs: rhs, values: specValues,
                             isConstant: specIsConstant, output: outputNode)
        }
        var position = [Int32].filled(with: 0, count: total)
        for (p, n) in order.enumerated() { position[Int(n)] = Int32(p) }
        return GraphSpec(
            ids: specIDs, labels: specLabels, ops: specOps,
            lhs: order.map { let l = lhs[Int($0)]; return l < 0 ? InputSlot.absent : position[Int(l)] },
            rhs: order.map { let r = rhs[Int($0)]; return r < 0 ? InputSlot.absent : position[Int(r)] },
            values: specValues, isConstant: specIsConstant, output: position[Int(outputNode)])
    }

    /// Ids for number-literal inputs: "#1", "#2", ... in request order (the expression form's style); if a request
    /// id already has that name, "#" is appended until it is free (deterministic, and distinct among themselves).
    func generatedConstantIDs() -> [String] {
        var result: [String] = []
        result.reserveCapacity(constants.count)
        for k in 0..<constants.count {
            var id = "#" + String(k + 1)
            while true {
                var probe = id
                let taken = probe.withUTF8 { ids.find($0) } >= 0
                if !taken { break }
                id += "#"
            }
            result.append(id)
        }
        return result
    }

    func cycleProblem(_ cycle: TopologicalOrder.Cycle) -> Problem {
        let shown = 8
        var names = cycle.path.prefix(shown).map { "\"\(ids.string(nodeSymbol[Int($0)]))\"" }
        if cycle.path.count > shown { names.append("... (\(cycle.path.count - 1) nodes)") }
        let kind = cycle.path.count == 2 ? "A node is its own input" : "Cycle"
        return .invalidGraph("\(kind): \(names.joined(separator: " -> ")) (-> means \"is an input of\").",
                             pointer: JSONPointer.input(Int(cycle.node), cycle.input))
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Byte equality with an ASCII literal (member names, op names).
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard count == n else { return false }
        let p = literal.utf8Start
        for k in 0..<n where self[k] != p[k] { return false }
        return true
    }
}

/// A small fixed batch of id occurrences waiting to be interned (one raw allocation per request).
struct PendingIDs {
    static let capacity = 32
    private let block = UnsafeMutableRawPointer.allocate(byteCount: capacity * 24, alignment: 8)
    var key: UnsafeMutablePointer<UnsafePointer<UInt8>> { block.assumingMemoryBound(to: UnsafePointer<UInt8>.self) }
    var length: UnsafeMutablePointer<Int32> { (block + Self.capacity * 8).assumingMemoryBound(to: Int32.self) }
    var hash: UnsafeMutablePointer<UInt32> { (block + Self.capacity * 12).assumingMemoryBound(to: UInt32.self) }
    var node: UnsafeMutablePointer<Int32> { (block + Self.capacity * 16).assumingMemoryBound(to: Int32.self) }
    var input: UnsafeMutablePointer<Int32> { (block + Self.capacity * 20).assumingMemoryBound(to: Int32.self) }
    var count = 0

    @inline(__always)
    mutating func append(_ p: UnsafePointer<UInt8>, count n: Int, hash h: UInt32, node i: Int, input j: Int) {
        key[count] = p; length[count] = Int32(n); hash[count] = h; node[count] = Int32(i); input[count] = Int32(j)
        count += 1
    }

    func release() { block.deallocate() }
}

/// A reader's buffers, kept per thread between small requests (one set per thread; a nested decode, should
/// there ever be one, allocates its own).
struct DecoderBuffers {
    /// Requests estimated at up to this many nodes take the kept buffers.
    static let reusedEstimate = 256
    /// Buffers grown past these sizes are freed rather than kept.
    static let keptBytes = 64 << 10
    static let keptColumn = 4096

    var ids: IDTable
    var definedAt, firstUseNode, firstUseInput, nodeSymbol: Column<Int32>
    var nodeOp: Column<UInt8>
    var nodeValue: Column<Double>
    var nodeLHS, nodeRHS: Column<Int32>
    var pending: PendingIDs

    /// This thread's kept buffers, removed from the thread's slot (nil when there are none).
    static func takeCurrent() -> DecoderBuffers? {
        guard let slot = pthread_getspecific(key)?.assumingMemoryBound(to: DecoderBuffers?.self) else { return nil }
        return slot.pointee.take()
    }

    /// Keeps `buffers` in this thread's slot; false when the slot is taken (the caller frees them).
    static func keepCurrent(_ buffers: DecoderBuffers) -> Bool {
        let slot: UnsafeMutablePointer<DecoderBuffers?>
        if let stored = pthread_getspecific(key) {
            slot = stored.assumingMemoryBound(to: DecoderBuffers?.self)
        } else {
            slot = .allocate(capacity: 1)
            slot.initialize(to: nil)
            pthread_setspecific(key, slot)
        }
        guard slot.pointee == nil else { return false }
        slot.pointee = buffers
        return true
    }

    /// Frees a thread's kept buffers when it exits.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { stored in
            guard let slot = stored?.assumingMemoryBound(to: DecoderBuffers?.self) else { return }
            if var buffers = slot.pointee {
                buffers.ids.release()
                buffers.pending.release()
                for column in [buffers.definedAt, buffers.firstUseNode, buffers.firstUseInput, buffers.nodeSymbol,
                               buffers.nodeLHS, buffers.nodeRHS] { column.release() }
                buffers.nodeOp.release()
                buffers.nodeValue.release()
            }
            slot.deinitialize(count: 1)
            slot.deallocate()
        }
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()
}
