import Micrograd

/// Compiles an infix expression such as `tanh(x1*w1 + x2*w2 + b)`, or a small program of named statements as the
/// lecture writes it (`a = 2.0`, `e = a*b`, `L = e * f`), into a `GraphSpec`.
///
/// Expression grammar, loosest binding first:
///
///     sum      := product (("+" | "-") product)*
///     product  := unary (("*" | "/") unary)*
///     unary    := ("-" | "+") unary | power
///     power    := primary (("**" | "^") unary)?          right-associative, tighter than unary minus
///     primary  := number | name | function "(" sum ("," sum)* ")" | "(" sum ")"
///
/// so `-x**2` is `-(x**2)` and `2**-x` is `2**(-x)`, as in Python. Functions: exp, log, tanh, relu,
/// sigmoid, neg (one argument) and pow (two).
///
/// A source with a `=` or `;` is a program: statements `name = sum`, separated by `;` or line breaks, with an optional
/// bare `sum` last. A line break ends a statement except inside parentheses or right after a binary operator.
/// `name = <signed number>` makes a leaf (a value with a gradient); `name = <anything else>` names the node that
/// computes it. Without `=` or `;` the source is one expression and line breaks are spaces. `#` comments to the line end.
///
/// The parser is shunting-yard with explicit stacks, never recursion, so 100,000 nested parentheses
/// cost memory, not stack. Nodes are appended as operators reduce, which yields a topological order.
/// Each name is one node (a variable's leaf is created at first use) so its gradient accumulates;
/// unnamed operator and constant nodes get ids `#1`, `#2`, ... which no name can take.
/// Syntax errors stop at once; name errors (unbound, assigned twice...) wait until the whole source has parsed.
public enum ExpressionCompiler {
    /// `output`, when given, names the node to differentiate instead of the last statement's.
    public static func compile(
        _ source: String, values: [(name: String, value: Double)], output: String? = nil,
        limits: GraphLimits = GraphLimits()
    ) throws(Problem) -> GraphSpec {
        var compiler = Compiler(source: source, limits: limits)
        for (name, value) in values where compiler.bindings[name] == nil {
            compiler.bindings[name] = value
        }
        try compiler.run()
        if let output {
            guard let node = compiler.spec.ids.firstIndex(of: output) else {
                throw .invalidGraph("\"output\" names no node of the expression: \"\(output.prefix(limits.maxIDLength))\"",
                                    pointer: "/output")
            }
            compiler.spec.output = Int32(node)
        }
        return compiler.spec
    }
}

/// One pending operator on the shunting-yard stack; `offset` is the byte where it stood, for errors.
private struct PendingOperator {
    enum Kind {
        case binary(Op)
        case power
        case negate
        case openParen
        /// A function call's parenthesis; `arguments` counts the commas seen plus one.
        case call(name: String, arguments: Int)
    }
    var kind: Kind
    var offset: Int

    /// How tightly it binds; higher reduces first. Parentheses never reduce by precedence.
    var precedence: Int {
        switch kind {
        case .binary(.add), .binary(.sub): 1
        case .binary: 2
        case .negate: 3
        case .power: 4
        case .openParen, .call: 0
        }
    }
}

private struct Compiler {
    let bytes: [UInt8]
    let source: String
    let limits: GraphLimits
    /// A multi-line source reports `line` and a column within it; a one-line source only a column.
    let isMultiline: Bool
    var bindings: [String: Double] = [:]
    var spec = GraphSpec()
    /// The node of each name: a variable's leaf, or a statement's node.
    var variableNodes: [String: Int32] = [:]
    /// Byte offset of each assignment's name, for "assigned twice" and "used before it is assigned".
    var assignedAt: [String: Int] = [:]
    /// Names used without a value, in order of first use (placeholder leaves keep the parse going).
    var unbound: [(name: String, offset: Int)] = []
    /// Index in `unbound` of each name still unbound (an assignment after the use takes it out), so a long
    /// program costs a lookup per assignment, not a scan.
    var unboundIndex: [String: Int] = [:]
    /// The first name problem other than "unbound", reported once the whole source has parsed.
    var nameProblem: Problem?
    /// Nodes created by a number literal that nothing has used yet: `-` folds into them, `**` takes them as exponent.
    var literalNodes: Set<Int32> = []
    var generatedCount = 0

    var operands: [Int32] = []
    var operators: [PendingOperator] = []
    /// Open parentheses (plain or call) on `operators`: a line break inside them does not end a statement.
    var openParentheses = 0
    var position = 0

    init(source: String, limits: GraphLimits) {
        self.source = source
        self.bytes = Array(source.utf8)
        self.limits = limits
        self.isMultiline = bytes.contains(UInt8(ascii: "\n"))
    }

    // MARK: statements

    mutating func run() throws(Problem) {
        if let problem = limits.expressionSizeProblem(byteCount: bytes.count) { throw problem }
        guard isProgram() else {
            spec.output = try parseExpression(statements: false)
            try reportNameProblems()
            return
        }
        var bareStatement: Int?  // offset of a bare expression statement, allowed only last
        var output: Int32?
        while true {
            skipBetweenStatements()
            guard position < bytes.count else { break }
            if let bareStatement {
                throw problem("Only the last statement may be a bare expression; name this one, as in `e = a*b`.", at: bareStatement)
            }
            let start = position
            let target = readAssignmentTarget()
            let countBefore = spec.count
            let node = try parseExpression(statements: true)
            if let target {
                bind(target.name, at: target.offset, to: node, madeFrom: countBefore)
            } else {
                bareStatement = start
            }
            literalNodes.removeAll(keepingCapacity: true)
            output = node
        }
        guard let output else {
            throw problem(bytes.isEmpty ? "The expression is empty." : "The program has no statement.", at: bytes.count)
        }
        spec.output = output
        try reportNameProblems()
    }

    /// A `=` or `;` outside comments makes the source a program of statements.
    func isProgram() -> Bool {
        var inComment = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "#"): inComment = true
            case UInt8(ascii: "\n"): inComment = false
            case UInt8(ascii: "="), UInt8(ascii: ";"): if !inComment { return true }
            default: break
            }
        }
        return false
    }

    /// Blank lines, comments and empty statements (`;;`, a trailing `;`).
    mutating func skipBetweenStatements() {
        while true {
            skipWhitespace(newlines: true)
            guard position < bytes.count, bytes[position] == UInt8(ascii: ";") else { return }
            position += 1
        }
    }

    /// `name =` at the start of a statement: consumes it and returns the name; otherwise consumes nothing.
    mutating func readAssignmentTarget() -> (name: String, offset: Int)? {
        let start = position
        guard isIdentifierStart(bytes[position]) else { return nil }
        let name = readIdentifier()
        skipWhitespace(newlines: false)
        if position < bytes.count, bytes[position] == UInt8(ascii: "="),
           position + 1 == bytes.count || bytes[position + 1] != UInt8(ascii: "=") {
            position += 1
            return (name, start)
        }
        position = start
        return nil
    }

    /// Gives `name` to the statement's node: a fresh literal becomes a leaf, a fresh operator node is renamed.
    /// Problems are recorded, not thrown, so that a syntax error further on is reported first.
    mutating func bind(_ name: String, at offset: Int, to node: Int32, madeFrom countBefore: Int) {
        if name.utf8.count > limits.maxIDLength {
            if nameProblem == nil {  // only the first is reported; placing one costs a pass over the source
                nameProblem = problem("The name '\(name.prefix(32))...' is longer than \(limits.maxIDLength) characters.", at: offset)
            }
            return
        }
        if let first = assignedAt[name] {
            if nameProblem == nil {
                nameProblem = problem("'\(name)' is already assigned on line \(location(of: first).line ?? 1); a name is assigned once.", at: offset)
            }
            return
        }
        assignedAt[name] = offset
        if bindings[name] != nil {
            if variableNodes[name] == nil { variableNodes[name] = node }  // later uses are not "unbound" too
            if nameProblem == nil {
                nameProblem = problem("'\(name)' is assigned here and also given in \"values\"; keep one of the two.", at: offset)
            }
            return
        }
        if let use = unboundIndex.removeValue(forKey: name) {
            let usedAt = unbound[use].offset
            if nameProblem == nil {
                nameProblem = problem("'\(name)' is used before it is assigned (on line \(location(of: offset).line ?? 1)).", at: usedAt)
            }
            return
        }
        let isFreshLiteral = literalNodes.contains(node)
        guard isFreshLiteral || (Int(node) >= countBefore && spec.ops[Int(node)] != .leaf) else {
            variableNodes[name] = node  // later uses are not "unbound" too
            if nameProblem == nil {
                nameProblem = problem(
                    "'\(name)' would only be another name for an existing node; assign a number or an expression such as `\(name) = a*b`.",
                    at: offset)
            }
            return
        }
        // The node is the statement's last: give back its generated `#k` so unnamed ids stay consecutive.
        precondition(Int(node) == spec.count - 1, "a statement's fresh node is the last one made")
        generatedCount -= 1
        spec.ids[Int(node)] = name
        spec.labels[Int(node)] = name
        if isFreshLiteral { spec.isConstant[Int(node)] = false }  // `a = 2.0` is the lecture's Value(2.0): it gets a gradient
        variableNodes[name] = node
    }


    /// After a clean parse: unbound names first (all of them, so a client can ask for every value at once).
    func reportNameProblems() throws(Problem) {
        let still = unbound.filter { unboundIndex[$0.name] != nil }
        if let first = still.first {
            let names = still.map(\.name)
            // The detail names a few; `unbound` lists them all.
            let shown = names.prefix(10).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 10 ? " and \(names.count - 10) more" : "")
            let detail = names.count == 1
                ? "The variable '\(first.name)' has no value in \"values\"."
                : "The variables \(shown) have no value in \"values\"."
            var p = problem(detail, at: first.offset)
            p.unbound = names
            throw p
        }
        if let nameProblem { throw nameProblem }
    }

    // MARK: one expression

    /// Parses one expression up to the end of the source (or, in a program, the end of the statement) and returns its node.
    mutating func parseExpression(statements: Bool) throws(Problem) -> Int32 {
        var expectOperand = true
        var afterBinary = false
        loop: while true {
            skipWhitespace(newlines: !statements)
            let offset = position  // turned into a line and column only for an error
            guard position < bytes.count else { break }
            let byte = bytes[position]
            if statements {
                if byte == UInt8(ascii: ";") { break }
                if byte == UInt8(ascii: "\n") {
                    // Inside parentheses or right after a binary operator the statement goes on.
                    if openParentheses > 0 || (expectOperand && afterBinary) { position += 1; continue }
                    break
                }
            }
            if byte == UInt8(ascii: "=") {
                throw problem("'=' belongs right after a name at the start of a statement, as in `e = a*b`.", at: offset)
            }
            if expectOperand {
                afterBinary = false
                switch byte {
                case UInt8(ascii: "("):
                    position += 1
                    operators.append(PendingOperator(kind: .openParen, offset: offset))
                    openParentheses += 1
                case UInt8(ascii: "-"):
                    position += 1
                    operators.append(PendingOperator(kind: .negate, offset: offset))
                case UInt8(ascii: "+"):
                    position += 1  // unary plus changes nothing
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
                    try readNumber()
                    expectOperand = false
                case _ where isIdentifierStart(byte):
                    let name = readIdentifier()
                    skipWhitespace(newlines: false)
                    if position < bytes.count, bytes[position] == UInt8(ascii: "(") {
                        guard OpVocabulary.functionArity(name) != nil else {
                            let known = OpVocabulary.functions.map(\.name).joined(separator: ", ")
                            throw problem("Unknown function '\(name)'; known: \(known).", at: offset)
                        }
                        position += 1
                        operators.append(PendingOperator(kind: .call(name: name, arguments: 1), offset: offset))
                        openParentheses += 1
                    } else {
                        try pushVariable(name, offset: offset)
                        expectOperand = false
                    }
                default:
                    throw unexpected(atOffset: position, expecting: "a number, a variable, '(' or a function call")
                }
            } else {
                switch byte {
                case UInt8(ascii: "+"): position += 1; try pushBinary(.binary(.add), offset: offset)
                case UInt8(ascii: "-"): position += 1; try pushBinary(.binary(.sub), offset: offset)
                case UInt8(ascii: "/"): position += 1; try pushBinary(.binary(.div), offset: offset)
                case UInt8(ascii: "^"): position += 1; try pushBinary(.power, offset: offset)
                case UInt8(ascii: "*"):
                    if position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "*") {
                        position += 2; try pushBinary(.power, offset: offset)
                    } else {
                        position += 1; try pushBinary(.binary(.mul), offset: offset)
                    }
                case UInt8(ascii: ")"):
                    position += 1
                    try closeParenthesis(offset: offset)
                    continue loop
                case UInt8(ascii: ","):
                    position += 1
                    try separateArgument(offset: offset)
                    expectOperand = true
                    continue loop
                default:
                    throw unexpected(
                        atOffset: position, expecting: statements ? "an operator, ')' or the end of the statement" : "an operator, ')' or the end")
                }
                expectOperand = true
                afterBinary = true
            }
        }
        if expectOperand {
            throw bytes.isEmpty
                ? problem("The expression is empty.", at: 0)
                : unexpected(atOffset: position, expecting: "an operand")
        }
        while let top = operators.popLast() {
            switch top.kind {
            case .openParen, .call:
                throw problem("This '(' is never closed.", at: top.offset)
            default:
                try reduce(top)
            }
        }
        precondition(operands.count == 1, "shunting-yard leaves exactly one operand")
        return operands.removeLast()
    }

    // MARK: operators

    mutating func pushBinary(_ kind: PendingOperator.Kind, offset: Int) throws(Problem) {
        let incoming = PendingOperator(kind: kind, offset: offset)
        let rightAssociative = if case .power = kind { true } else { false }
        while let top = operators.last, top.precedence > 0,
              top.precedence > incoming.precedence || (top.precedence == incoming.precedence && !rightAssociative) {
            operators.removeLast()
            try reduce(top)
        }
        operators.append(incoming)
    }

    mutating func closeParenthesis(offset: Int) throws(Problem) {
        while let top = operators.popLast() {
            switch top.kind {
            case .openParen:
                openParentheses -= 1
                return
            case .call(let name, let arguments):
                openParentheses -= 1
                let arity = OpVocabulary.functionArity(name)!
                guard arguments == arity else {
                    throw problem("\(name)() takes \(arity) argument\(arity == 1 ? "" : "s"), not \(arguments).", at: top.offset)
                }
                try applyFunction(name, offset: top.offset)
                return
            default:
                try reduce(top)
            }
        }
        throw problem("This ')' has no matching '('.", at: offset)
    }

    mutating func separateArgument(offset: Int) throws(Problem) {
        while let top = operators.last {
            switch top.kind {
            case .openParen:
                throw problem("',' separates function arguments and cannot appear here.", at: offset)
            case .call(let name, let arguments):
                operators[operators.count - 1].kind = .call(name: name, arguments: arguments + 1)
                return
            default:
                operators.removeLast()
                try reduce(top)
            }
        }
        throw problem("',' separates function arguments and cannot appear here.", at: offset)
    }

    mutating func reduce(_ pending: PendingOperator) throws(Problem) {
        switch pending.kind {
        case .binary(let op):
            let rhs = operands.removeLast(), lhs = operands.removeLast()
            try pushNode(op, lhs, rhs, offset: pending.offset)
        case .power:
            let exponent = operands.removeLast(), base = operands.removeLast()
            try pushPower(base, exponent, offset: pending.offset)
        case .negate:
            let operand = operands.removeLast()
            if literalNodes.contains(operand) {
                // `-2` is the constant -2, not neg(2): keeps `x ** -2` a constant exponent, as micrograd writes it.
                spec.values[Int(operand)] = -spec.values[Int(operand)]
                operands.append(operand)
            } else {
                try pushNode(.neg, operand, -1, offset: pending.offset)
            }
        case .openParen, .call:
            preconditionFailure("parentheses are closed explicitly")
        }
    }

    mutating func applyFunction(_ name: String, offset: Int) throws(Problem) {
        switch name {
        case "pow":
            let exponent = operands.removeLast(), base = operands.removeLast()
            try pushPower(base, exponent, offset: offset)
        default:
            let operand = operands.removeLast()
            try pushNode(OpVocabulary.unaryFunction(name)!, operand, -1, offset: offset)
        }
    }

    /// A literal exponent stays a constant (micrograd's `x**2`); anything else is a value with its own gradient.
    mutating func pushPower(_ base: Int32, _ exponent: Int32, offset: Int) throws(Problem) {
        if literalNodes.contains(exponent), exponent == Int32(spec.count - 1) {
            // The literal was the last node made and nothing uses it: drop it and keep its value as the exponent.
            let value = spec.values[Int(exponent)]
            removeLastNode()
            try pushNode(.powConst, base, -1, value: value, offset: offset)
        } else {
            try pushNode(.pow, base, exponent, offset: offset)
        }
    }

    // MARK: operands

    mutating func pushNode(_ op: Op, _ lhs: Int32, _ rhs: Int32, value: Double = 0, offset: Int) throws(Problem) {
        literalNodes.remove(lhs)
        literalNodes.remove(rhs)
        try checkNodeCap(offset: offset)
        generatedCount += 1
        operands.append(spec.append(id: "#\(generatedCount)", op: op, lhs: lhs, rhs: rhs, value: value))
    }

    mutating func pushVariable(_ name: String, offset: Int) throws(Problem) {
        if let node = variableNodes[name] {
            operands.append(node)
            return
        }
        let value = bindings[name]
        if value == nil {
            // Unbound (or used before its assignment): a placeholder leaf keeps the parse going; reported at the end.
            unboundIndex[name] = unbound.count
            unbound.append((name, offset))
        }
        try checkNodeCap(offset: offset)
        let node = spec.append(id: name, label: name, op: .leaf, value: value ?? 0)
        variableNodes[name] = node
        operands.append(node)
    }

    mutating func readNumber() throws(Problem) {
        let start = position
        let offset = start
        var digits = 0
        while position < bytes.count, isDigit(bytes[position]) { position += 1; digits += 1 }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            while position < bytes.count, isDigit(bytes[position]) { position += 1; digits += 1 }
        }
        guard digits > 0 else { throw unexpected(atOffset: start, expecting: "a number") }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            var exponentDigits = 0
            while position < bytes.count, isDigit(bytes[position]) { position += 1; exponentDigits += 1 }
            guard exponentDigits > 0 else { throw unexpected(atOffset: position, expecting: "exponent digits") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw problem("The number \(text) is out of range for a double.", at: offset)
        }
        try checkNodeCap(offset: offset)
        generatedCount += 1
        let node = spec.append(id: "#\(generatedCount)", op: .leaf, value: value, isConstant: true)
        literalNodes.insert(node)
        operands.append(node)
    }

    mutating func readIdentifier() -> String {
        let start = position
        while position < bytes.count, isIdentifierStart(bytes[position]) || isDigit(bytes[position]) { position += 1 }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    mutating func removeLastNode() {
        let last = spec.count - 1
        literalNodes.remove(Int32(last))
        spec.ids.removeLast(); spec.labels.removeLast(); spec.ops.removeLast(); spec.lhs.removeLast()
        spec.rhs.removeLast(); spec.values.removeLast(); spec.isConstant.removeLast()
        generatedCount -= 1
    }

    func checkNodeCap(offset: Int) throws(Problem) {
        if spec.count >= limits.maxNodes {
            let place = location(of: offset)
            throw Problem(
                .invalidGraph, "The expression makes more than \(limits.maxNodes) nodes (the node cap).",
                pointer: "/expression", column: place.column, line: place.line)
        }
    }

    // MARK: characters

    /// Spaces and `#` comments; line breaks too unless they may end a statement.
    mutating func skipWhitespace(newlines: Bool) {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): position += 1
            case UInt8(ascii: "\n"):
                guard newlines else { return }
                position += 1
            case UInt8(ascii: "#"):
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
            default: return
            }
        }
    }

    /// The 1-based line (multi-line sources only) and 1-based column in characters (Unicode scalars) within it,
    /// so a client can point at the place in the text it sent.
    func location(of offset: Int) -> (line: Int?, column: Int) {
        let end = min(offset, bytes.count)
        var line = 1, column = 1
        for i in 0..<end {
            if bytes[i] == UInt8(ascii: "\n") && isMultiline {
                line += 1
                column = 1
            } else if bytes[i] & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (isMultiline ? line : nil, column)
    }

    func problem(_ detail: String, at offset: Int) -> Problem {
        let place = location(of: offset)
        return .invalidExpression(detail, column: place.column, line: place.line)
    }

    /// "Expected X, found Y" at the byte `offset`.
    func unexpected(atOffset offset: Int, expecting: String) -> Problem {
        let found: String
        if offset >= bytes.count {
            found = "the end of the expression"
        } else if bytes[offset] == UInt8(ascii: "\n") {
            found = "the end of the line"
        } else {
            var end = offset + 1
            while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
            found = "'\(String(decoding: bytes[offset..<end], as: UTF8.self))'"
        }
        return problem("Expected \(expecting), found \(found).", at: offset)
    }

    func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || b == UInt8(ascii: "_")
    }
}
