import Micrograd
import Testing

@testable import MicrogradGraph

/// Named statements in the expression form: `a = 2.0`, `e = a*b`, `L = d * f`, as the lecture writes them.
@Suite("Expression programs")
struct ExpressionProgramTests {
    static let lecture = "a = 2.0\nb = -3.0\nc = 10.0\ne = a*b\nd = e + c\nf = -2.0\nL = d * f"

    func evaluate(_ source: String, values: [(name: String, value: Double)] = [], output: String? = nil) throws -> EvaluatedGraph {
        GraphEvaluator.evaluate(try ExpressionCompiler.compile(source, values: values, output: output), on: Tape())
    }

    func grads(_ g: EvaluatedGraph) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(g.spec.ids, g.grad))
    }

    /// The problem `source` raises (fails the test when it compiles).
    func problem(_ source: String, values: [(name: String, value: Double)] = [], output: String? = nil) -> Problem? {
        do {
            _ = try ExpressionCompiler.compile(source, values: values, output: output)
            Issue.record("\(source.debugDescription) compiled")
            return nil
        } catch {
            return error
        }
    }

    @Test func theLecturesProgramGivesTheLecturesNumbers() throws {
        let g = try evaluate(Self.lecture)
        #expect(g.spec.ids == ["a", "b", "c", "e", "d", "f", "L"])
        #expect(g.spec.labels == ["a", "b", "c", "e", "d", "f", "L"])
        #expect(g.spec.ops == [.leaf, .leaf, .leaf, .mul, .add, .leaf, .mul])
        #expect(g.spec.isConstant == Array(repeating: false, count: 7), "a = 2.0 is a value with a gradient, not a constant")
        #expect(g.spec.output == 6 && g.outputValue == -8)
        #expect(grads(g) == ["a": 6, "b": -4, "c": -2, "e": -2, "d": -2, "f": 4, "L": 1])
    }

    @Test func semicolonsLineBreaksCommentsAndBlankLinesSeparateTheSameStatements() throws {
        let reference = try ExpressionCompiler.compile(Self.lecture, values: [])
        for source in [
            "a = 2.0; b = -3.0; c = 10.0; e = a*b; d = e + c; f = -2.0; L = d * f",
            "# the lecture\n\na = 2.0   # Value(2.0)\nb = -3.0\r\nc = 10.0;\n\ne = a*b\nd = e + c; f = -2.0\nL = d * f\n",
            "a = 2.0;; b = -3.0; c = 10.0; e = a*b; d = e + c; f = -2.0; L = d * f;",
        ] {
            #expect(try ExpressionCompiler.compile(source, values: []) == reference, "\(source.debugDescription)")
        }
    }

    @Test func withoutAnEqualsSignLineBreaksAreSpaces() throws {
        let values: [(name: String, value: Double)] = [("x", 2), ("y", 3)]
        let oneLine = try ExpressionCompiler.compile("x * y + x", values: values)
        #expect(try ExpressionCompiler.compile("x\n* y\n\n+ x  # comment\n", values: values) == oneLine)
    }

    @Test func aLineBreakContinuesInsideParenthesesAndAfterABinaryOperator() throws {
        let g = try evaluate("a = 2\nb = 3\ny = (a +\n b) * tanh(\n a\n) *\n b")
        let inline = try evaluate("(a + b) * tanh(a) * b", values: [("a", 2), ("b", 3)])
        #expect(g.spec.ids.last == "y" && g.outputValue == inline.outputValue)
    }

    @Test func aLineBreakOtherwiseEndsTheStatement() throws {
        // Python reads it the same way: `y = a*b`, then the bare expression `-c` is the output.
        let g = try evaluate("a = 2\nb = 3\nc = 4\ny = a*b\n- c")
        #expect(g.spec.ids == ["a", "b", "c", "y", "#1"])
        #expect(g.spec.ops.last == .neg && g.outputValue == -4)
        let p = problem("a = 2\ny = a *\n\nb")  // after an operator, blank lines are spaces too
        #expect(p?.detail.contains("'b' has no value") == true && p?.line == 4 && p?.column == 1)
        let cut = problem("a = 2\ny = -\na")  // a unary minus is not a binary operator
        #expect(cut?.detail == "Expected an operand, found the end of the line." && cut?.line == 2 && cut?.column == 6)
        let afterEquals = problem("a =\n2")
        #expect(afterEquals?.detail == "Expected an operand, found the end of the line." && afterEquals?.line == 1)
    }

    @Test func aBareExpressionIsAllowedOnlyLast() throws {
        let g = try evaluate("a = 2\nb = 3\na*b + 1")
        #expect(g.spec.ids == ["a", "b", "#1", "#2", "#3"] && g.outputValue == 7)
        let p = problem("a = 2\na*3\nb = a + 1")
        #expect(p?.detail.contains("Only the last statement may be a bare expression") == true)
        #expect(p?.line == 2 && p?.column == 1 && p?.pointer == "/expression")
    }

    @Test func aSignedNumberMakesALeafAndAnythingElseNamesItsOutermostNode() throws {
        let g = try evaluate("f = -2.0\ng = +3\nh = -(4)\nk = 2*3\ny = f*g*h*k")
        #expect(Array(g.spec.ids.prefix(4)) == ["f", "g", "h", "#1"])
        #expect(Array(g.spec.values.prefix(3)) == [-2, 3, -4])
        #expect(Array(g.spec.ops.prefix(3)) == [.leaf, .leaf, .leaf] && Array(g.spec.isConstant.prefix(3)) == [false, false, false])
        let k = try #require(g.spec.ids.firstIndex(of: "k"))
        #expect(g.spec.ops[k] == .mul && g.data[k] == 6)
        #expect(grads(g)["f"] == -72.0)  // g*h*k
    }

    @Test func aNameIsOneNodeWhoseGradientAccumulates() throws {
        let g = try evaluate("x = 3\nn = x*2\ny = n*n + n")
        #expect(g.spec.ids.filter { $0 == "n" }.count == 1)
        #expect(g.spec.ids == ["x", "#1", "n", "#2", "y"])
        // y = n^2 + n, n = 2x: dy/dn = 2n + 1 = 13, dy/dx = 26.
        #expect(grads(g)["n"] == 13 && grads(g)["x"] == 26)
    }

    @Test func aNamedLayerIsADAGNotATree() throws {
        // A neuron's output used by two others is one node, as in the lecture's MLP; inlined it would be copied.
        let named = try ExpressionCompiler.compile("h = tanh(x*w + b)\ny = tanh(h*u) + tanh(h*v)", values: [
            ("x", 1), ("w", 2), ("b", 0), ("u", 1), ("v", -1),
        ])
        let inlined = try ExpressionCompiler.compile("tanh(tanh(x*w + b)*u) + tanh(tanh(x*w + b)*v)", values: [
            ("x", 1), ("w", 2), ("b", 0), ("u", 1), ("v", -1),
        ])
        #expect(named.count == 13 && inlined.count == 16)
    }

    @Test func unnamedNodesKeepConsecutiveGeneratedIDs() throws {
        let spec = try ExpressionCompiler.compile("a = 2\nb = a*3 + 1\nb*b + 5", values: [])
        #expect(spec.ids == ["a", "#1", "#2", "#3", "b", "#4", "#5", "#6"])
        #expect(spec.isConstant == [false, true, false, true, false, false, true, false])
    }

    @Test func aNameIsAssignedOnce() {
        let p = problem("a = 2\nb = a*a\n  a = 3")
        #expect(p?.detail == "'a' is already assigned on line 1; a name is assigned once.")
        #expect(p?.kind == .invalidExpression && p?.pointer == "/expression")
        #expect(p?.line == 3 && p?.column == 3)
    }

    @Test func everyUnboundNameIsListedAtTheFirstOne() {
        let p = problem("y = p*q + r\nz = y*p + s", values: [("s", 1)])
        #expect(p?.unbound == ["p", "q", "r"] && p?.kind == .invalidExpression)
        #expect(p?.detail == "The variables 'p', 'q', 'r' have no value in \"values\".")
        #expect(p?.line == 1 && p?.column == 5)
        let one = problem("x + zz", values: [("x", 1)])
        #expect(one?.unbound == ["zz"] && one?.line == nil && one?.column == 5)
    }

    @Test func manyUnboundNamesAreAllListedButTheDetailNamesTen() {
        let names = (0..<5_000).map { "v\($0)" }
        let p = problem("y = " + names.joined(separator: " + "))
        #expect(p?.unbound == names)
        #expect(p?.detail == "The variables 'v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9' and 4990 more have no value in \"values\".")
        // Each later assignment takes its name out of the unbound list (by lookup, not a scan of it).
        let late = problem("y = " + names.joined(separator: " + ") + "\n" + names.map { "\($0) = 1" }.joined(separator: "\n"))
        #expect(late?.unbound == nil && late?.detail == "'v0' is used before it is assigned (on line 2).")
    }

    @Test func aNameUsedBeforeItsAssignmentIsNotUnboundButMisplaced() {
        let p = problem("y = x*2\nx = 3")
        #expect(p?.detail == "'x' is used before it is assigned (on line 2).")
        #expect(p?.unbound == nil && p?.line == 1 && p?.column == 5)
    }

    @Test func aNameAssignedAndGivenInValuesIsRefused() {
        let p = problem("a = 2\ny = a*a", values: [("a", 5)])
        #expect(p?.detail == "'a' is assigned here and also given in \"values\"; keep one of the two.")
        #expect(p?.line == 1 && p?.column == 1)
    }

    @Test(arguments: ["x = 1\ne = x", "x = 1\ne = (x)", "x = 1\ny = x*x\ne = y", "e = v\ny = e*e"])
    func aNameForAnExistingNodeIsRefused(source: String) {
        let p = problem(source, values: [("v", 1)])
        #expect(p?.detail.contains("would only be another name for an existing node") == true, "\(source.debugDescription)")
        #expect(p?.line == source.split(separator: "\n").firstIndex { $0.hasPrefix("e =") }.map { $0 + 1 })
    }

    @Test func aSyntaxErrorIsReportedBeforeAnyNameProblem() {
        let unboundFirst = problem("tanh(x * )")
        #expect(unboundFirst?.detail == "Expected a number, a variable, '(' or a function call, found ')'.")
        #expect(unboundFirst?.unbound == nil && unboundFirst?.column == 10)
        let twiceFirst = problem("a = 1\na = zz\ny = (a")
        #expect(twiceFirst?.detail == "This '(' is never closed." && twiceFirst?.line == 3 && twiceFirst?.column == 5)
    }

    @Test(arguments: [
        ("a + b = 3", 7, "'=' belongs right after a name"),
        ("a = b = 3", 7, "'=' belongs right after a name"),
        ("= 3", 1, "'=' belongs right after a name"),
        ("2 = a", 3, "'=' belongs right after a name"),
        ("a == 3", 3, "'=' belongs right after a name"),
        ("a = 1; b = (a;", 12, "never closed"),
        (";", 2, "no statement"),
    ])
    func misplacedEqualsAndSemicolons(source: String, column: Int, detail: String) {
        let p = problem(source, values: [("b", 1)])
        #expect(p?.column == column && p?.line == nil && p?.detail.contains(detail) == true, "\(p.map { "\($0)" } ?? "-")")
    }

    @Test func linesAndColumnsInAMultiLineSource() {
        // Columns count characters within the line; é is one.
        let p = problem("a = 1\n\n  y = é + é $ 2")
        #expect(p?.line == 3 && p?.column == 7 && p?.detail.contains("'é'") == true)
        let q = problem("a = 1\n\n  y = a $ 2")
        #expect(q?.line == 3 && q?.column == 9 && q?.detail.contains("'$'") == true)
        let single = problem("a = 1; y = a $ 2")
        #expect(single?.line == nil && single?.column == 14)
    }

    @Test func outputMayNameAnotherNode() throws {
        let g = try evaluate(Self.lecture, output: "d")
        #expect(g.spec.ids[Int(g.spec.output)] == "d" && g.outputValue == 4)
        #expect(grads(g) == ["a": -3, "b": 2, "c": 1, "e": 1, "d": 1, "f": 0, "L": 0])
        let generated = try evaluate("x*y + 1", values: [("x", 2), ("y", 3)], output: "#1")
        #expect(generated.outputValue == 6)
        let p = problem(Self.lecture, output: "zz")
        #expect(p?.kind == .invalidGraph && p?.pointer == "/output" && p?.detail.contains("\"zz\"") == true)
    }

    @Test func longNamesAreLimitedLikeIDs() throws {
        let name = String(repeating: "n", count: 300)
        #expect(problem("\(name) = 2")?.detail.contains("longer than 256 characters") == true)
        #expect(try ExpressionCompiler.compile("\(name.prefix(256)) = 2", values: []).ids == [String(name.prefix(256))])
    }

    @Test func longProgramsAndDeepStatementsUseNoStack() throws {
        var program = "x0 = 1\n"
        for i in 1..<30_000 { program += "x\(i) = x\(i - 1) * 1.0001 + 0\n" }
        let long = try ExpressionCompiler.compile(program, values: [])
        #expect(long.ids.last == "x29999" && long.count == 1 + 29_999 * 4)
        let depth = 100_000
        let deep = "a = 1\ny = " + String(repeating: "(", count: depth) + "a*2" + String(repeating: "\n)", count: depth)
        let spec = try ExpressionCompiler.compile(deep, values: [])
        #expect(spec.ids == ["a", "#1", "y"])
    }
}
