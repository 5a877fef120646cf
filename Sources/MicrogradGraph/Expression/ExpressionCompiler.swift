import Micrograd

/// Compiles an infix expression such as `tanh(x1*w1 + x2*w2 + b)` into a `GraphSpec`.
///
/// Grammar, loosest binding first:
///
///     sum      := product (("+" | "-") product)*
///     product  := unary (("*" | "/") unary)*
///     unary    := ("-" | "+") unary | power
///     power    := primary (("**" | "^") unary)?          right-associative, tighter than unary minus
///     primary  := number | variable | function "(" sum ("," sum)* ")" | "(" sum ")"
///
/// so `-x**2` is `-(x**2)` and `2**-x` is `2**(-x)`, as in Python. Functions: exp, log, tanh, relu,
/// sigmoid, neg (one argument) and pow (two).
///
/// The parser is shunting-yard with explicit stacks, never recursion, so 100,000 nested parentheses
/// cost memory, not stack. Nodes are appended as operators reduce, which yields a topological order.
/// Each variable is one leaf (id = its name, created at first use) so its gradient accumulates;
/// operator and constant nodes get ids `#1`, `#2`, ... which no variable name can take.
public enum ExpressionCompiler {
    public static func compile(
        _ source: String, values: [(name: String, value: Double)], limits: GraphLimits = GraphLimits()
    ) throws(Problem) -> GraphSpec {
        var compiler = Compiler(source: source, limits: limits)
        for (name, value) in values where compiler.bindings[name] == nil {
            compiler.bindings[name] = value
        }
        try compiler.run()
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
    var bindings: [String: Double] = [:]
    var spec = GraphSpec()
    /// Leaf index of each variable already used.
    var variableNodes: [String: Int32] = [:]
    /// Nodes created by a number literal that nothing has used yet: `-` folds into them, `**` takes them as exponent.
    var literalNodes: Set<Int32> = []
    var generatedCount = 0

    var operands: [Int32] = []
    var operators: [PendingOperator] = []
    var position = 0

    init(source: String, limits: GraphLimits) {
        self.source = source
        self.bytes = Array(source.utf8)
        self.limits = limits
    }

    // MARK: driving loop

    mutating func run() throws(Problem) {
        if let problem = limits.expressionSizeProblem(byteCount: bytes.count) { throw problem }
        var expectOperand = true
        while true {
            skipWhitespace()
            let offset = position  // turned into a column only for an error
            guard position < bytes.count else { break }
            let byte = bytes[position]
            if expectOperand {
                switch byte {
                case UInt8(ascii: "("):
                    position += 1
                    operators.append(PendingOperator(kind: .openParen, offset: offset))
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
                    skipWhitespace()
                    if position < bytes.count, bytes[position] == UInt8(ascii: "(") {
                        guard Self.functionArity[name] != nil else {
                            throw .invalidExpression(
                                "Unknown function '\(name)'; known: exp, log, tanh, relu, sigmoid, neg, pow.", column: columnOf(offset))
                        }
                        position += 1
                        operators.append(PendingOperator(kind: .call(name: name, arguments: 1), offset: offset))
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
                    expectOperand = true
                    continue
                case UInt8(ascii: ")"):
                    position += 1
                    try closeParenthesis(offset: offset)
                    continue
                case UInt8(ascii: ","):
                    position += 1
                    try separateArgument(offset: offset)
                default:
                    throw unexpected(atOffset: position, expecting: "an operator, ')' or the end")
                }
                expectOperand = true
            }
        }
        if expectOperand {
            throw .invalidExpression(
                bytes.isEmpty ? "The expression is empty." : "Expected an operand, found the end of the expression.",
                column: columnOf(bytes.count))
        }
        while let top = operators.popLast() {
            switch top.kind {
            case .openParen, .call:
                throw .invalidExpression("This '(' is never closed.", column: columnOf(top.offset))
            default:
                try reduce(top)
            }
        }
        precondition(operands.count == 1, "shunting-yard leaves exactly one operand")
        spec.output = operands[0]
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
                return
            case .call(let name, let arguments):
                let arity = Self.functionArity[name]!
                guard arguments == arity else {
                    throw .invalidExpression(
                        "\(name)() takes \(arity) argument\(arity == 1 ? "" : "s"), not \(arguments).", column: columnOf(top.offset))
                }
                try applyFunction(name, offset: top.offset)
                return
            default:
                try reduce(top)
            }
        }
        throw .invalidExpression("This ')' has no matching '('.", column: columnOf(offset))
    }

    mutating func separateArgument(offset: Int) throws(Problem) {
        while let top = operators.last {
            switch top.kind {
            case .openParen:
                throw .invalidExpression("',' separates function arguments and cannot appear here.", column: columnOf(offset))
            case .call(let name, let arguments):
                operators[operators.count - 1].kind = .call(name: name, arguments: arguments + 1)
                return
            default:
                operators.removeLast()
                try reduce(top)
            }
        }
        throw .invalidExpression("',' separates function arguments and cannot appear here.", column: columnOf(offset))
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
            try pushNode(Self.unaryFunctions[name]!, operand, -1, offset: offset)
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
        guard let value = bindings[name] else {
            throw .invalidExpression("The variable '\(name)' has no value in \"values\".", column: columnOf(offset))
        }
        try checkNodeCap(offset: offset)
        let node = spec.append(id: name, label: name, op: .leaf, value: value)
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
            throw .invalidExpression("The number \(text) is out of range for a double.", column: columnOf(offset))
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
            throw .invalidGraph(
                "The expression makes more than \(limits.maxNodes) nodes (the node cap).",
                pointer: "/expression", column: columnOf(offset))
        }
    }

    // MARK: characters

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    /// 1-based column in characters (Unicode scalars), so a client can point at it in the text it sent.
    func columnOf(_ offset: Int) -> Int {
        var column = 1
        for i in 0..<min(offset, bytes.count) where bytes[i] & 0xC0 != 0x80 { column += 1 }
        return column
    }

    /// "Expected X, found Y" at the byte `offset`.
    func unexpected(atOffset offset: Int, expecting: String) -> Problem {
        let column = columnOf(offset)
        let found: String
        if offset >= bytes.count {
            found = "the end of the expression"
        } else {
            let scalars = source.unicodeScalars
            found = "'\(scalars[scalars.index(scalars.startIndex, offsetBy: column - 1)])'"
        }
        return .invalidExpression("Expected \(expecting), found \(found).", column: column)
    }

    func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || b == UInt8(ascii: "_")
    }

    static let unaryFunctions: [String: Op] = [
        "exp": .exp, "log": .log, "tanh": .tanh, "relu": .relu, "sigmoid": .sigmoid, "neg": .neg,
    ]
    static let functionArity: [String: Int] = [
        "exp": 1, "log": 1, "tanh": 1, "relu": 1, "sigmoid": 1, "neg": 1, "pow": 2,
    ]
}
