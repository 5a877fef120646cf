import ArgumentParser
import MicrogradGraph
import MicrogradService

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `micrograd eval`: the service's evaluation, offline: the same `EvaluationPipeline` as POST /evaluate.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a graph request (a file, or stdin) or an expression, and print it with its gradients.",
        discussion: """
            Examples:
              micrograd eval graph.json
              echo '{"expression": "a*b + c", "values": {"a": 2, "b": -3, "c": 10}}' | micrograd eval
              micrograd eval --expression 'tanh(x*w + b)' --set x=2 --set w=-3 --set b=6.88 --format dot
              micrograd eval --expression 'x*w' --values '{"x": [1, 2, 3], "w": 0.5}'   (a batch: one row per element)
            Exit status: 0 on success, 1 when the input is invalid (the problem is printed on stderr).
            """)

    @Argument(help: "A graph-form or expression-form JSON request; '-' or nothing reads stdin.")
    var file: String?

    @Option(name: .shortAndLong, help: "An infix expression, e.g. 'tanh(x1*w1 + x2*w2 + b)' (instead of a file).")
    var expression: String?

    @Option(help: "The expression's variables as a JSON object, e.g. '{\"x\": 2}'.")
    var values: String?

    @Option(name: .customLong("set"), help: "One variable of the expression, name=value (repeatable).")
    var assignments: [String] = []

    @Option(name: .shortAndLong, help: "Output: \(GraphFormat.names).")
    var format: String = GraphFormat.json.rawValue

    @Option(help: "Most nodes in the graph.")
    var maxNodes: Int = GraphLimits().maxNodes

    func validate() throws {
        guard GraphFormat(named: format) != nil else {
            throw ValidationError("--format must be one of \(GraphFormat.names) (got '\(format)').")
        }
        if expression == nil, values != nil || !assignments.isEmpty {
            throw ValidationError("--values and --set go with --expression.")
        }
        if expression != nil, file != nil {
            throw ValidationError("Give either a file or --expression, not both.")
        }
    }

    func run() throws {
        let body = try expression.map { try expressionRequest($0) } ?? readInput()
        let format = GraphFormat(named: format)!
        let pipeline = EvaluationPipeline(limits: GraphLimits(maxNodes: maxNodes))
        do throws(ServiceProblem) {
            // Arrays in an expression's values: a batch, answered as POST /evaluate answers it (JSON columns).
            if let batch = try ExpressionBatch.answer(body, limits: pipeline.limits) {
                guard format == .json else {
                    throw ServiceProblem(name: "not-acceptable", title: "Not acceptable", status: 406,
                                         detail: "a batch (arrays in values) is printed as JSON only")
                }
                writeAll(batch + [UInt8(ascii: "\n")], to: 1)
                return
            }
            let graph = try pipeline.evaluate(body, for: format)
            let output = try pipeline.represent(graph, id: "local", as: format).get()
            writeAll(output + (output.last == UInt8(ascii: "\n") ? [] : [UInt8(ascii: "\n")]), to: 1)
        } catch {
            writeAll(Array((Self.describe(error) + "\n").utf8), to: 2)
            throw ExitCode(1)
        }
    }

    /// One line of text for a problem: its title, detail, and where (pointer, line, column).
    static func describe(_ problem: ServiceProblem) -> String {
        var message = "micrograd: \(problem.title.lowercased()): \(problem.detail)"
        var place: [String] = []
        if let pointer = problem.pointer { place.append("at \(pointer.isEmpty ? "the whole request" : pointer)") }
        if let line = problem.line { place.append("line \(line)") }
        if let column = problem.column { place.append("column \(column)") }
        if !place.isEmpty { message += " (" + place.joined(separator: ", ") + ")" }
        return message
    }

    /// Builds the expression-form request, so `--expression` takes exactly the service's path.
    func expressionRequest(_ source: String) throws -> [UInt8] {
        var members: [String] = []
        if let values {
            let trimmed = values.trimmingCharacters(in: " \n\t")
            guard trimmed.hasPrefix("{"), trimmed.hasSuffix("}") else {
                throw ValidationError("--values must be a JSON object, e.g. '{\"x\": 2}'.")
            }
            let inner = trimmed.dropFirst().dropLast().trimmingCharacters(in: " \n\t")
            if !inner.isEmpty { members.append(inner) }
        }
        for assignment in assignments {
            let parts = assignment.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]), value.isFinite else {
                throw ValidationError("--set takes name=number, got '\(assignment)'.")
            }
            members.append("\(GraphEncoder.jsonString(String(parts[0]))): \(value)")
        }
        let request = "{\"expression\": \(GraphEncoder.jsonString(source)), \"values\": {\(members.joined(separator: ", "))}}"
        return Array(request.utf8)
    }

    func readInput() throws -> [UInt8] {
        guard let file, file != "-" else { return try readAll(from: 0, name: "stdin") }
        let fd = open(file, O_RDONLY)
        guard fd >= 0 else { throw CLIError("cannot open \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        return try readAll(from: fd, name: file)
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func readAll(from fd: Int32, name: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n > 0 {
            bytes.append(contentsOf: chunk[0..<n])
        } else if n == 0 {
            return bytes
        } else if errno != EINTR {
            throw CLIError("cannot read \(name): \(String(cString: strerror(errno)))")
        }
    }
}

func writeAll(_ bytes: [UInt8], to fd: Int32) {
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if n > 0 { written += n } else if errno != EINTR { return }
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
