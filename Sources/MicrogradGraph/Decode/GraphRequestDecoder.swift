import Micrograd

/// Decodes a POST /evaluate body (graph form or expression form) into a validated, topologically sorted `GraphSpec`.
///
/// One pass over the bytes, specialised to the schema (Foundation's decoders run at ~20 MB/s and parse doubles
/// inexactly, FIELD-NOTES). Errors: malformed JSON -> 400 malformed-json; well-formed but wrongly shaped -> 400
/// invalid-request; an unevaluable graph -> 422 invalid-graph; over a size limit -> 413. Each carries an RFC 6901
/// pointer into the request. A syntax error anywhere wins over a shape or graph error found earlier in the text.
public enum GraphRequestDecoder {
    public static func decode(_ body: [UInt8], limits: GraphLimits) throws(Problem) -> GraphSpec {
        guard !body.isEmpty else { throw Problem.malformedJSON("empty body: expected a JSON object", pointer: "") }
        if body.count >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
            throw Problem.malformedJSON("a byte order mark is not allowed in JSON (RFC 8259)", pointer: "")
        }
        return try body.withUnsafeBufferPointer { (buffer) throws(Problem) -> GraphSpec in
            var reader = GraphRequestReader(base: buffer.baseAddress!, count: buffer.count, limits: limits)
            defer { reader.release() }
            return try reader.read()
        }
    }
}

/// Where the reader is, so an error can carry a JSON pointer. Cheap to update on the hot path.
private enum ReadContext {
    case root
    case member(String)            // a top-level member
    case node(Int)
    case nodeMember(Int, String)
    case input(Int, Int)
    case value(String)             // a member of "values"

    var pointer: String {
        switch self {
        case .root: ""
        case .member(let name): "/" + JSONPointer.escape(name)
        case .node(let i): JSONPointer.node(i)
        case .nodeMember(let i, let name): JSONPointer.node(i, name)
        case .input(let i, let j): JSONPointer.input(i, j)
        case .value(let name): "/values/" + JSONPointer.escape(name)
        }
    }
}

private struct GraphRequestReader {
    var s: JSONScanner
    let limits: GraphLimits
    var context = ReadContext.root
    /// The first shape/graph problem seen; reported once the whole text is known to be well-formed.
    var problem: Problem?

    // Ids, interned by bytes. Per symbol: the request node that defines it (-1 while only referenced),
    // and its first reference (for an "unknown id" pointer).
    var ids: IDTable
    var definedAt: [Int32] = []
    var firstUseNode: [Int32] = []
    var firstUseInput: [Int32] = []

    // Request nodes, in request order. Inputs are refs: a symbol (>= 0), a constant `-(k + 2)`, or -1 (none).
    var nodeSymbol: [Int32] = []
    var nodeOp: [Op] = []
    var nodeValue: [Double] = []
    var nodeLabel: [String?] = []
    var nodeIn0: [Int32] = []
    var nodeIn1: [Int32] = []
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
        let estimate = min(count / 24 + 16, limits.maxNodes + 16)
        ids = IDTable(expectedCount: estimate)
        definedAt.reserveCapacity(estimate); firstUseNode.reserveCapacity(estimate); firstUseInput.reserveCapacity(estimate)
        nodeSymbol.reserveCapacity(estimate); nodeOp.reserveCapacity(estimate); nodeValue.reserveCapacity(estimate)
        nodeLabel.reserveCapacity(estimate); nodeIn0.reserveCapacity(estimate); nodeIn1.reserveCapacity(estimate)
    }

    mutating func release() {
        s.release()
        ids.release()
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
                throw Problem.invalidRequest("\(error.message) (at byte \(error.offset))", pointer: context.pointer)
            }
            throw Problem.malformedJSON("\(error.message) (at byte \(error.offset))", pointer: context.pointer)
        }
        if let problem { throw problem }
        if sawExpression && !sawNodes {
            if sawOutput { throw Problem.invalidRequest("\"output\" belongs to the graph form, not the expression form", pointer: "/output") }
            return try ExpressionCompiler.compile(expression ?? "", values: values, limits: limits)
        }
        if sawNodes && sawExpression {
            throw Problem.invalidRequest("give either \"nodes\" (graph form) or \"expression\", not both", pointer: "/expression")
        }
        guard sawNodes else {
            throw Problem.invalidRequest("the request needs \"nodes\" (graph form) or \"expression\" (expression form)", pointer: "")
        }
        if sawValues {
            throw Problem.invalidRequest("\"values\" belongs to the expression form; graph leaves carry their own \"value\"", pointer: "/values")
        }
        return try build()
    }

    mutating func readDocument() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "{") else {
            try s.skipValue()
            try expectEnd()
            record(.invalidRequest("the request body must be a JSON object", pointer: ""))
            return
        }
        if try !s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
            repeat {
                context = .root
                let key = try s.readKey()
                if key.equals("nodes") {
                    context = .member("nodes")
                    if sawNodes { try duplicateMember("nodes"); continue }
                    sawNodes = true
                    try readNodes()
                } else if key.equals("output") {
                    context = .member("output")
                    if sawOutput { try duplicateMember("output"); continue }
                    sawOutput = true
                    try readOutput()
                } else if key.equals("expression") {
                    context = .member("expression")
                    if sawExpression { try duplicateMember("expression"); continue }
                    sawExpression = true
                    try readExpression()
                } else if key.equals("values") {
                    context = .member("values")
                    if sawValues { try duplicateMember("values"); continue }
                    sawValues = true
                    try readValues()
                } else {
                    // Unknown members are allowed (forward compatibility) but must still be valid JSON.
                    context = .member(String(decoding: key, as: UTF8.self))
                    try s.skipValue()
                }
            } while try s.nextMember(close: UInt8(ascii: "}"))
        }
        context = .root
        try expectEnd()
    }

    mutating func expectEnd() throws(ScanError) {
        s.skipWhitespace()
        guard s.pos == s.end else { throw s.error("unexpected content after the JSON value") }
    }

    mutating func duplicateMember(_ name: String) throws(ScanError) {
        record(.invalidRequest("duplicate member \"\(name)\"", pointer: context.pointer))
        try s.skipValue()
    }

    // MARK: top-level members

    mutating func readOutput() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"output\" must be a string (a node id)", pointer: "/output"))
            return try s.skipValue()
        }
        output = Array(try s.readString())
    }

    mutating func readExpression() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"expression\" must be a string", pointer: "/expression"))
            return try s.skipValue()
        }
        let text = try s.readString()
        if text.count > limits.maxExpressionBytes {
            record(.tooLarge("the expression is \(text.count) bytes; the limit is \(limits.maxExpressionBytes)", pointer: "/expression"))
            return
        }
        expression = String(decoding: text, as: UTF8.self)
    }

    mutating func readValues() throws(ScanError) {
        guard try s.peek() == UInt8(ascii: "{") else {
            record(.invalidRequest("\"values\" must be an object mapping variable names to numbers", pointer: "/values"))
            return try s.skipValue()
        }
        if try s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) { return }
        var seen = Set<String>()
        repeat {
            let name = String(decoding: try s.readKey(), as: UTF8.self)
            context = .value(name)
            if !seen.insert(name).inserted {
                record(.invalidRequest("duplicate variable \"\(name)\" in \"values\"", pointer: context.pointer))
                try s.skipValue()
                continue
            }
            if let v = try readNumberOrNonFinite() {
                values.append((name, v))
            } else {
                record(.invalidRequest("the value of \"\(name)\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\")",
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
            record(.invalidRequest("\"nodes\" must be an array of node objects", pointer: "/nodes"))
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
        context = .node(i)
        var symbol: Int32 = -1
        var opName: OpName?
        var value: Double?
        var exponent: Double?
        var label: String?
        var in0: Int32 = -1, in1: Int32 = -1
        var inputCount = 0
        var seen: Seen = []
        defer {
            nodeSymbol.append(symbol); nodeValue.append(value ?? exponent ?? 0); nodeLabel.append(label)
            nodeIn0.append(in0); nodeIn1.append(in1)
        }
        guard try s.peek() == UInt8(ascii: "{") else {
            record(.invalidRequest("a node must be an object", pointer: context.pointer))
            nodeOp.append(.leaf)
            return try s.skipValue()
        }
        if try !s.open(UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
            repeat {
                let key = try s.readKey()
                if key.equals("id") {
                    context = .nodeMember(i, "id")
                    if try duplicate(.id, &seen) { continue }
                    symbol = try readNodeID(i)
                } else if key.equals("op") {
                    context = .nodeMember(i, "op")
                    if try duplicate(.op, &seen) { continue }
                    opName = try readOpName()
                } else if key.equals("inputs") {
                    context = .nodeMember(i, "inputs")
                    if try duplicate(.inputs, &seen) { continue }
                    inputCount = try readInputs(i, &in0, &in1)
                } else if key.equals("value") {
                    context = .nodeMember(i, "value")
                    if try duplicate(.value, &seen) { continue }
                    value = try readNumberOrNonFinite()
                    if value == nil {
                        record(.invalidRequest("\"value\" must be a number (or \"NaN\", \"Infinity\", \"-Infinity\")",
                                               pointer: context.pointer))
                    }
                } else if key.equals("label") {
                    context = .nodeMember(i, "label")
                    if try duplicate(.label, &seen) { continue }
                    label = try readLabel()
                } else if key.equals("exponent") {
                    context = .nodeMember(i, "exponent")
                    if try duplicate(.exponent, &seen) { continue }
                    exponent = try readNumberOrNonFinite()
                    if exponent == nil {
                        record(.invalidRequest("\"exponent\" must be a number", pointer: context.pointer))
                    }
                } else {
                    context = .nodeMember(i, String(decoding: key, as: UTF8.self))
                    try s.skipValue()
                }
            } while try s.nextMember(close: UInt8(ascii: "}"))
        }
        context = .node(i)
        if !seen.contains(.id) {
            record(.invalidRequest("a node needs an \"id\" (a string)", pointer: context.pointer))
        }
        nodeOp.append(resolveOp(i, opName, seen: seen, inputCount: inputCount))
        if nodeOp.count + constants.count > limits.maxNodes {
            record(.invalidGraph("the graph has more than \(limits.maxNodes) nodes (node cap), counting constant inputs",
                                 pointer: context.pointer))
        }
    }

    /// Checks a node member for a repeat; a repeated member is recorded and its value skipped (returns true).
    mutating func duplicate(_ member: Seen, _ seen: inout Seen) throws(ScanError) -> Bool {
        if seen.contains(member) {
            record(.invalidRequest("duplicate member in a node", pointer: context.pointer))
            try s.skipValue()
            return true
        }
        seen.insert(member)
        return false
    }

    mutating func readNodeID(_ i: Int) throws(ScanError) -> Int32 {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"id\" must be a string", pointer: context.pointer))
            try s.skipValue()
            return -1
        }
        let bytes = try s.readString()
        if bytes.count > limits.maxIDBytes {
            record(.tooLarge("an id is \(bytes.count) bytes; the limit is \(limits.maxIDBytes)", pointer: context.pointer))
            return -1
        }
        let (symbol, isNew) = ids.intern(bytes)
        if isNew {
            definedAt.append(Int32(i)); firstUseNode.append(-1); firstUseInput.append(-1)
        } else if definedAt[Int(symbol)] >= 0 {
            record(.invalidGraph("duplicate id \"\(ids.string(symbol))\" (first defined at \(JSONPointer.node(Int(definedAt[Int(symbol)]))))",
                                 pointer: context.pointer))
        } else {
            definedAt[Int(symbol)] = Int32(i)
        }
        return symbol
    }

    mutating func readLabel() throws(ScanError) -> String? {
        let c = try s.peek()
        if c == UInt8(ascii: "n") {
            if try s.readLiteral() == 2 { return nil }  // null: no label
        } else if c == UInt8(ascii: "\"") {
            let bytes = try s.readString()
            if bytes.count > limits.maxIDBytes {
                record(.tooLarge("a label is \(bytes.count) bytes; the limit is \(limits.maxIDBytes)", pointer: context.pointer))
                return nil
            }
            return String(decoding: bytes, as: UTF8.self)
        } else {
            try s.skipValue()
        }
        record(.invalidRequest("\"label\" must be a string", pointer: context.pointer))
        return nil
    }

    /// Reads an `inputs` array; keeps the first two refs, returns how many there were.
    mutating func readInputs(_ i: Int, _ in0: inout Int32, _ in1: inout Int32) throws(ScanError) -> Int {
        guard try s.peek() == UInt8(ascii: "[") else {
            record(.invalidRequest("\"inputs\" must be an array of node ids or numbers", pointer: context.pointer))
            try s.skipValue()
            return 0
        }
        if try s.open(UInt8(ascii: "["), close: UInt8(ascii: "]")) { return 0 }
        var j = 0
        repeat {
            context = .input(i, j)
            let ref = try readInputRef(i, j)
            if j == 0 { in0 = ref } else if j == 1 { in1 = ref }
            j += 1
        } while try s.nextMember(close: UInt8(ascii: "]"))
        context = .nodeMember(i, "inputs")
        return j
    }

    mutating func readInputRef(_ i: Int, _ j: Int) throws(ScanError) -> Int32 {
        let c = try s.peek()
        if c == UInt8(ascii: "\"") {
            let bytes = try s.readString()
            if bytes.count > limits.maxIDBytes {
                record(.invalidGraph("unknown id (longer than any id may be: \(limits.maxIDBytes) bytes)", pointer: context.pointer))
                return -1
            }
            let (symbol, isNew) = ids.intern(bytes)
            if isNew {
                definedAt.append(-1); firstUseNode.append(Int32(i)); firstUseInput.append(Int32(j))
            }
            return symbol
        }
        if c == UInt8(ascii: "-") || s.isDigit(c) {
            // A number literal: a constant leaf of its own.
            constants.append(try s.readNumber())
            if nodeOp.count + 1 + constants.count > limits.maxNodes {
                record(.invalidGraph("the graph has more than \(limits.maxNodes) nodes (node cap), counting constant inputs",
                                     pointer: context.pointer))
            }
            return -Int32(constants.count + 1)
        }
        record(.invalidRequest("an input must be a node id (string) or a number", pointer: context.pointer))
        try s.skipValue()
        return -1
    }

    // MARK: ops

    enum OpName {
        case op(Op)
        case minus      // "-": sub with two inputs, neg with one
        case pow        // "pow"/"**": constant exponent or two inputs
        case unknown
    }

    mutating func readOpName() throws(ScanError) -> OpName? {
        guard try s.peek() == UInt8(ascii: "\"") else {
            record(.invalidRequest("\"op\" must be a string", pointer: context.pointer))
            try s.skipValue()
            return nil
        }
        let name = try s.readString()
        let op = Self.opNamed(name)
        if case .unknown = op {
            let text = String(decoding: name.prefix(64), as: UTF8.self)
            record(.invalidGraph("unknown op \"\(text)\"; ops: add sub mul div neg pow exp log tanh relu sigmoid (or + - * / **)",
                                 pointer: context.pointer))
        }
        return op
    }

    static func opNamed(_ b: UnsafeBufferPointer<UInt8>) -> OpName {
        switch b.count {
        case 1:
            switch b[0] {
            case UInt8(ascii: "+"): return .op(.add)
            case UInt8(ascii: "-"): return .minus
            case UInt8(ascii: "*"): return .op(.mul)
            case UInt8(ascii: "/"): return .op(.div)
            default: return .unknown
            }
        case 2: return b.equals("**") ? .pow : .unknown
        case 3:
            if b.equals("mul") { return .op(.mul) }
            if b.equals("add") { return .op(.add) }
            if b.equals("sub") { return .op(.sub) }
            if b.equals("div") { return .op(.div) }
            if b.equals("neg") { return .op(.neg) }
            if b.equals("pow") { return .pow }
            if b.equals("exp") { return .op(.exp) }
            if b.equals("log") { return .op(.log) }
            return .unknown
        case 4:
            if b.equals("tanh") { return .op(.tanh) }
            if b.equals("relu") { return .op(.relu) }
            return .unknown
        case 7: return b.equals("sigmoid") ? .op(.sigmoid) : .unknown
        default: return .unknown
        }
    }

    /// Decides the node's op from what it carried, recording leaf/op/arity/exponent problems.
    mutating func resolveOp(_ i: Int, _ name: OpName?, seen: Seen, inputCount: Int) -> Op {
        guard let name else {
            if seen.contains(.op) { return .leaf }  // a non-string op: already recorded
            if !seen.contains(.value) {
                record(.invalidGraph("missing value: a node is a leaf with a \"value\" or an op with \"op\" and \"inputs\"",
                                     pointer: JSONPointer.node(i)))
            } else if seen.contains(.inputs) {
                record(.invalidGraph("a leaf (a node with a value) takes no inputs", pointer: JSONPointer.node(i, "inputs")))
            } else if seen.contains(.exponent) {
                record(.invalidGraph("\"exponent\" applies only to pow", pointer: JSONPointer.node(i, "exponent")))
            }
            return .leaf
        }
        if seen.contains(.value) {
            record(.invalidGraph("an op node takes no \"value\" (its value is computed)", pointer: JSONPointer.node(i, "value")))
        }
        let op: Op
        switch name {
        case .unknown:
            return .leaf
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
            record(.invalidGraph("\"exponent\" applies only to pow", pointer: JSONPointer.node(i, "exponent")))
        }
        if inputCount != op.arity {
            let what = op.arity == 1 ? "1 input" : "\(op.arity) inputs"
            arityProblem(i, "\(op.name) takes \(what)", inputCount, seen)
        }
        return op
    }

    mutating func arityProblem(_ i: Int, _ rule: String, _ got: Int, _ seen: Seen) {
        let pointer = seen.contains(.inputs) ? JSONPointer.node(i, "inputs") : JSONPointer.node(i)
        record(.invalidGraph("wrong arity: \(rule), got \(got)", pointer: pointer))
    }

    // MARK: building the spec

    mutating func build() throws(Problem) -> GraphSpec {
        let userCount = nodeOp.count
        guard userCount > 0 else { throw Problem.invalidGraph("the graph has no nodes", pointer: "/nodes") }
        // Every referenced id must be defined; report the first reference in request order.
        if let unknown = definedAt.firstIndex(where: { $0 < 0 }) {
            throw Problem.invalidGraph("unknown id \"\(ids.string(Int32(unknown)))\": no node has this id",
                                       pointer: JSONPointer.input(Int(firstUseNode[unknown]), Int(firstUseInput[unknown])))
        }
        var outputNode = Int32(userCount - 1)
        if let output {
            let symbol = output.withUnsafeBufferPointer { ids.find($0) }
            guard symbol >= 0, definedAt[Int(symbol)] >= 0 else {
                let text = String(decoding: output.prefix(limits.maxIDBytes), as: UTF8.self)
                throw Problem.invalidGraph("\"output\" names unknown id \"\(text)\"", pointer: "/output")
            }
            outputNode = definedAt[Int(symbol)]
        }

        // Inputs as node indices: request nodes first, then constants in request order.
        let total = userCount + constants.count
        var lhs = [Int32](repeating: -1, count: total)
        var rhs = [Int32](repeating: -1, count: total)
        definedAt.withUnsafeBufferPointer { defined in
            @inline(__always) func node(_ ref: Int32) -> Int32 {
                ref >= 0 ? defined[Int(ref)] : ref == -1 ? -1 : Int32(userCount) + (-ref - 2)
            }
            for i in 0..<userCount {
                lhs[i] = node(nodeIn0[i])
                rhs[i] = node(nodeIn1[i])
            }
        }
        let order: [Int32]
        switch TopologicalOrder.sort(lhs: lhs, rhs: rhs) {
        case .success(let o): order = o
        case .failure(let cycle): throw cycleProblem(cycle)
        }

        var position = [Int32](repeating: 0, count: total)
        for (p, n) in order.enumerated() { position[Int(n)] = Int32(p) }
        let constantIDs = generatedConstantIDs()
        var spec = GraphSpec()
        spec.reserveCapacity(total)
        for n32 in order {
            let n = Int(n32)
            if n < userCount {
                let l = lhs[n], r = rhs[n]
                spec.append(id: ids.string(nodeSymbol[n]), label: nodeLabel[n], op: nodeOp[n],
                            lhs: l < 0 ? -1 : position[Int(l)], rhs: r < 0 ? -1 : position[Int(r)],
                            value: nodeValue[n])
            } else {
                spec.append(id: constantIDs[n - userCount], op: .leaf, value: constants[n - userCount], isConstant: true)
            }
        }
        spec.output = position[Int(outputNode)]
        return spec
    }

    /// Ids for number-literal inputs: "#0", "#1", ... in request order; if a request id already has that
    /// name, "#" is appended until it is free (deterministic, and distinct among themselves).
    func generatedConstantIDs() -> [String] {
        var result: [String] = []
        result.reserveCapacity(constants.count)
        for k in 0..<constants.count {
            var id = "#" + String(k)
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
        let kind = cycle.path.count == 2 ? "a node is its own input" : "cycle"
        return .invalidGraph("\(kind): \(names.joined(separator: " -> ")) (-> means \"is an input of\")",
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
