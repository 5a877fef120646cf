import ArgumentParser

/// `micrograd`: the service, and the same graph evaluation offline.
@main
struct MicrogradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "micrograd",
        abstract: "Evaluate and differentiate scalar expression graphs (a micrograd service).",
        discussion: """
            Every serve option can also be set by the environment variable named in its help; \
            a command-line option wins over the environment.
            """,
        version: "0.1.0",
        subcommands: [ServeCommand.self, EvalCommand.self, HealthcheckCommand.self]
    )
}
