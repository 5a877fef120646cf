import Micrograd
import Testing

@testable import MicrogradGraph

@Suite("Expression compiler")
struct ExpressionCompilerTests {
    let neuronValues: [(name: String, value: Double)] = [
        ("x1", 2), ("w1", -3), ("x2", 0), ("w2", 1), ("b", 6.881373587019543),
    ]

    @Test func compilesTheLectureNeuronInTopologicalOrder() throws {
        let spec = try ExpressionCompiler.compile("tanh(x1*w1 + x2*w2 + b)", values: neuronValues)
        #expect(spec.ids == ["x1", "w1", "#1", "x2", "w2", "#2", "#3", "b", "#4", "#5"])
        #expect(spec.ops == [.leaf, .leaf, .mul, .leaf, .leaf, .mul, .add, .leaf, .add, .tanh])
        #expect(spec.lhs[2] == 0 && spec.rhs[2] == 1)
        #expect(spec.lhs[9] == 8 && spec.rhs[9] == -1)
        #expect(spec.output == 9)
        #expect(spec.labels[0] == "x1" && spec.labels[2] == nil)
        #expect(spec.values[7] == 6.881373587019543)
        for (index, node) in zip(spec.lhs.indices, spec.lhs) { #expect(node < Int32(index)) }
    }

    @Test func aVariableUsedTwiceIsOneNode() throws {
        let spec = try ExpressionCompiler.compile("x*x + x", values: [("x", 3)])
        #expect(spec.ids == ["x", "#1", "#2"])
        #expect(spec.lhs == [-1, 0, 1] && spec.rhs == [-1, 0, 0])
    }

    @Test func powerIsRightAssociativeAndBindsTighterThanUnaryMinus() throws {
        // -x**2 == -(x**2), with a constant exponent as micrograd writes it.
        let negSquare = try ExpressionCompiler.compile("-x**2", values: [("x", 3)])
        #expect(negSquare.ops == [.leaf, .powConst, .neg])
        #expect(negSquare.values[1] == 2)

        // a^b^c == a^(b^c): both are value exponents.
        let tower = try ExpressionCompiler.compile("a^b^c", values: [("a", 2), ("b", 3), ("c", 2)])
        #expect(tower.ops == [.leaf, .leaf, .leaf, .pow, .pow])
        #expect(tower.lhs[3] == 1 && tower.rhs[3] == 2)
        #expect(tower.lhs[4] == 0 && tower.rhs[4] == 3)

        // 2**-x == 2**(-x): the literal base stays a constant leaf.
        let decay = try ExpressionCompiler.compile("2**-x", values: [("x", 1)])
        #expect(decay.ops == [.leaf, .leaf, .neg, .pow])
        #expect(decay.isConstant == [true, false, false, false])
    }

    @Test func aNegativeLiteralExponentStaysConstant() throws {
        let spec = try ExpressionCompiler.compile("x ** -2", values: [("x", 4)])
        #expect(spec.ops == [.leaf, .powConst])
        #expect(spec.values[1] == -2)
        #expect(spec.ids == ["x", "#1"])
    }

    @Test func precedenceOfTheFourOperations() throws {
        // 1 - 2 / 4 * 3 + 5 == (1 - ((2 / 4) * 3)) + 5
        let spec = try ExpressionCompiler.compile("1 - 2 / 4 * 3 + 5", values: [])
        #expect(spec.ops == [.leaf, .leaf, .leaf, .div, .leaf, .mul, .sub, .leaf, .add])
        #expect(spec.lhs[6] == 0 && spec.rhs[6] == 5)
    }

    @Test func functionsAndPow() throws {
        let spec = try ExpressionCompiler.compile(
            "pow(x, 3) + pow(x, y) + exp(x) + log(y) + relu(x) + sigmoid(y) + neg(x)", values: [("x", 1), ("y", 2)])
        #expect(spec.ops.filter { $0 == .powConst }.count == 1)
        #expect(spec.ops.filter { $0 == .pow }.count == 1)
        for op in [Op.exp, .log, .relu, .sigmoid, .neg] { #expect(spec.ops.contains(op)) }
    }

    @Test func numbersInEveryJSONlikeForm() throws {
        let spec = try ExpressionCompiler.compile("1 + 2.5 + .5 + 3. + 1e3 + 2.5E-2", values: [])
        #expect(spec.values.enumerated().filter { spec.ops[$0.offset] == .leaf }.map(\.element) == [1, 2.5, 0.5, 3, 1000, 0.025])
    }

    @Test(arguments: [
        ("x +", 4, "end of the expression"),
        ("x + * y", 5, "'*'"),
        ("(x", 1, "never closed"),
        ("x)", 2, "no matching"),
        ("foo(x)", 1, "Unknown function 'foo'"),
        ("tanh(x, x)", 1, "takes 1 argument"),
        ("pow(x)", 1, "takes 2 arguments"),
        ("x + zz", 5, "'zz' has no value"),
        ("x $ x", 3, "'$'"),
        ("é + x", 1, "'é'"),
        ("x + é", 5, "'é'"),
        ("1e400 * x", 1, "out of range"),
        ("x, x", 2, "','"),
        ("()", 2, "')'"),
        ("", 1, "empty"),
        ("2e+", 4, "exponent digits"),
    ])
    func errorsPointAtTheColumn(source: String, column: Int, detail: String) {
        #expect {
            try ExpressionCompiler.compile(source, values: [("x", 1)])
        } throws: { error in
            guard let problem = error as? Problem else { return false }
            return problem.kind == .invalidExpression
                && problem.column == column && problem.pointer == "/expression" && problem.detail.contains(detail)
        }
    }

    @Test func deepNestingUsesNoStack() throws {
        let depth = 100_000
        let nested = String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth)
        let spec = try ExpressionCompiler.compile(nested, values: [("x", 1)])
        #expect(spec.count == 1)

        let negations = String(repeating: "-", count: depth) + "x"
        #expect(try ExpressionCompiler.compile(negations, values: [("x", 1)]).count == depth + 1)

        let unclosed = String(repeating: "(", count: depth) + "x"
        #expect(throws: Problem.self) { try ExpressionCompiler.compile(unclosed, values: [("x", 1)]) }
    }

    @Test func limitsAreEnforced() {
        let small = GraphLimits(maxNodes: 3, maxExpressionBytes: 16)
        #expect {
            try ExpressionCompiler.compile("x*x*x*x", values: [("x", 1)], limits: small)
        } throws: { ($0 as? Problem)?.kind == .invalidGraph && ($0 as? Problem)?.detail.contains("node cap") == true }
        #expect {
            try ExpressionCompiler.compile(String(repeating: "x+", count: 20) + "x", values: [("x", 1)], limits: small)
        } throws: { ($0 as? Problem)?.kind == .tooLarge }
    }
}
