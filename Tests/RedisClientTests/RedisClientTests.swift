import Foundation
import RedisClient
import RedisTesting
import Synchronization
import Testing

/// Every test runs its own real redis-server (scripts/install-deps installs it).
@Suite struct RedisClientTests {
    @Test func valuesAreBinarySafe() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        let key = Array("k\0\r\n".utf8)
        let value = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7) } + [0, 13, 10, 0]
        #expect(try client.command([Array("SET".utf8), key, value]) == .status("OK"))
        #expect(try client.command([Array("GET".utf8), key]) == .bulk(value))
        #expect(try client.command([Array("SET".utf8), Array("empty".utf8), []]) == .status("OK"))
        #expect(try client.command("GET", "empty") == .bulk([]))
        #expect(try client.command("GET", "missing") == .null)
        #expect(try client.command("STRLEN", "empty") == .integer(0))

        let large = [UInt8](repeating: 0xAB, count: 10 << 20)
        #expect(try client.command([Array("SET".utf8), Array("large".utf8), large]) == .status("OK"))
        #expect(try client.command("GET", "large") == .bulk(large))

        let replies = try client.pipeline([["RPUSH", "list", "a", "b"], ["LRANGE", "list", "0", "-1"]].map {
            $0.map { Array($0.utf8) }
        })
        #expect(replies == [.integer(2), .array([.bulk(Array("a".utf8)), .bulk(Array("b".utf8))])])
    }

    @Test func errorRepliesAreAnswersNotFailures() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        _ = try client.command("SET", "text", "abc")
        guard case .error(let message) = try client.command("INCR", "text") else {
            Issue.record("expected an error reply")
            return
        }
        #expect(message.contains("not an integer"))
        #expect(client.state == .available)
        #expect(try client.command("GET", "text") == .bulk(Array("abc".utf8)))  // the connection is still fine
    }

    @Test func maxmemoryRefusalIsAnErrorReply() throws {
        let redis = try RedisServer(arguments: ["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        let value = [UInt8](repeating: 1, count: 512 << 10)
        var refused: String?
        for index in 0..<40 where refused == nil {  // bounded: 20 MB is far past 2 MB
            if case .error(let message) = try client.command([Array("SET".utf8), Array("v\(index)".utf8), value]) {
                refused = message
            }
        }
        #expect(refused?.hasPrefix("OOM") == true)
        #expect(client.state == .available)
    }

    @Test func authenticatesAndSelectsTheDatabase() throws {
        let redis = try RedisServer(arguments: ["--requirepass", "s3cret"])
        var configuration = redis.configuration()
        configuration.password = "s3cret"
        configuration.database = 3
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        _ = try client.command("SET", "where", "db3")
        #expect(try client.command("GET", "where") == .bulk(Array("db3".utf8)))
        configuration.database = 0
        let other = RedisClient(configuration: configuration)
        defer { other.close() }
        #expect(try other.command("GET", "where") == .null)

        configuration.password = "wrong"
        let refused = RedisClient(configuration: configuration)
        defer { refused.close() }
        #expect(throws: RedisError.self) { try refused.command("PING") }
        #expect(refused.lastError?.kind == .setup)

        configuration.password = nil
        let anonymous = RedisClient(configuration: configuration)
        defer { anonymous.close() }
        // Without AUTH the connection opens, and the command itself is refused (an answer, not an outage).
        guard case .error(let message) = try anonymous.command("GET", "where") else {
            Issue.record("expected NOAUTH")
            return
        }
        #expect(message.hasPrefix("NOAUTH"))
    }

    @Test func manyThreadsShareThePool() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        let failures = failuresAcrossThreads(8, 200) { thread, index in
            let key = "t\(thread)-\(index)"
            return (try? client.pipeline([["SET", key, key], ["GET", key]].map { $0.map { Array($0.utf8) } }))
                == [.status("OK"), .bulk(Array(key.utf8))]
        }
        #expect(failures == 0)
        #expect(try client.command("DBSIZE") == .integer(1600))
    }

    /// Commands are sent as built: arguments binary-safe and of any length, numbers in decimal.
    @Test func builtCommandsAreWhatRedisReads() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        let value = (0..<300).map { UInt8(truncatingIfNeeded: $0) } + [13, 10]
        var commands = RedisCommands()
        commands.begin(arguments: 5)
        commands.argument("SET")
        commands.argument(Array("ns:".utf8), "k\u{e9}y")
        commands.argument(value)
        commands.argument("EX")
        commands.argument(1234567890)
        commands.append([Array("GET".utf8), Array("ns:k\u{e9}y".utf8)])
        commands.begin(arguments: 2)
        commands.argument("TTL")
        commands.argument(utf8: "ns:k\u{e9}y")
        commands.begin(arguments: 3)
        commands.argument("INCRBY")
        commands.argument(utf8: "n")
        commands.argument(-42)
        #expect(commands.isComplete && commands.count == 4)
        let replies = try client.pipeline(commands)
        #expect(replies[0] == .status("OK") && replies[1] == .bulk(value) && replies[3] == .integer(-42))
        guard case .integer(let ttl) = replies[2] else { Issue.record("TTL: \(replies[2])"); return }
        #expect(ttl > 1_234_567_000)
    }

    /// A command written in one pass is byte for byte the one built argument by argument (empty, two-part, binary and
    /// 10-digit arguments), after other commands too, and Redis reads it.
    @Test func onePassCommandsMatchArgumentByArgument() throws {
        let value = (0..<300).map { UInt8(truncatingIfNeeded: $0) } + [13, 10]
        let prefix = Array("ns:".utf8), name = Array("k\u{e9}y".utf8), seconds = Array("1234567890".utf8)
        var expected = RedisCommands()
        expected.append([Array("PING".utf8)])
        expected.begin(arguments: 6)
        expected.argument("SET")
        expected.argument(prefix + name)
        expected.argument(value)
        expected.argument("EX")
        expected.argument(1234567890)
        expected.argument([])
        var built = RedisCommands()
        built.append([Array("PING".utf8)])
        prefix.withUnsafeBytes { prefix in
            name.withUnsafeBytes { name in
                value.withUnsafeBytes { value in
                    seconds.withUnsafeBytes { seconds in
                        built.append(.init("SET"), .init(prefix, name), .init(value), .init("EX"), .init(seconds), .init(""))
                    }
                }
            }
        }
        #expect(built == expected)
        #expect(built.isComplete && built.count == 2)
        var set = RedisCommands()
        set.append(.init("SET"), .init("k"), .init("v"))
        #expect(set.bytes == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".utf8))
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        var sent = RedisCommands()
        prefix.withUnsafeBytes { prefix in
            name.withUnsafeBytes { name in
                value.withUnsafeBytes { value in sent.append(.init("SET"), .init(prefix, name), .init(value)) }
            }
        }
        #expect(try client.pipeline(sent) == [.status("OK")])
        #expect(try client.command([Array("GET".utf8), prefix + name]) == .bulk(value))
    }

    /// `lastWins` commands: each round trip sends exactly one, the last caller's, and every caller gets its reply.
    @Test func lastWinsCommandsAreSentOncePerRoundTrip() throws {
        let redis = try RedisServer()
        let roundTrips = Atomic(0)
        let client = RedisClient(configuration: redis.configuration()) { event in
            if case .roundTrip = event { roundTrips.add(1, ordering: .relaxed) }
        }
        defer { client.close() }
        @Sendable func set(_ key: String, latest: String) -> (RedisCommands, RedisCommands) {
            (RedisCommands([["SET", key, "v"].map { Array($0.utf8) }]),
             RedisCommands([["INCR", "sent"], ["SET", "latest", latest]].map { $0.map { Array($0.utf8) } }))
        }
        // One caller at a time: every call is its batch's last.
        for index in 0..<5 {
            let (own, last) = set("one\(index)", latest: "one\(index)")
            #expect(try client.sharedPipeline(own, lastWins: last) == [.status("OK"), .integer(Int64(index + 1)), .status("OK")])
            #expect(try client.command("GET", "latest") == .bulk(Array("one\(index)".utf8)))
        }
        let failures = failuresAcrossThreads(8, 100) { thread, index in
            let (own, last) = set("t\(thread)-\(index)", latest: "t\(thread)-\(index)")
            let replies = try? client.sharedPipeline(own, lastWins: thread % 3 == 0 ? nil : last)
            let expected = thread % 3 == 0 ? 1 : 3
            return replies?.count == expected && replies?.first == .status("OK")
        }
        #expect(failures == 0)
        // A round trip carried one INCR when any of its callers passed `lastWins`: never more, so at most one per trip.
        guard case .bulk(let counter) = try client.command("GET", "sent"), let sent = Int64(String(decoding: counter, as: UTF8.self))
        else { Issue.record("no counter"); return }
        let trips = roundTrips.load(ordering: .relaxed) - 5 - 5 - 1  // the sequential calls, their GETs, this GET
        #expect(sent >= 5 && sent - 5 <= Int64(trips))
        // The latest pointer names the final call of some thread that passed it (the last round trip's last caller).
        guard case .bulk(let latest) = try client.command("GET", "latest") else { Issue.record("no latest"); return }
        #expect((0..<8).filter { $0 % 3 != 0 }.map { "t\($0)-99" }.contains(String(decoding: latest, as: UTF8.self)))
    }

    /// Group commit: concurrent callers share round trips, yet each gets exactly its own replies, in order; a dead
    /// Redis fails every queued caller (none is left waiting), and a returning one serves them again.
    @Test func sharedPipelinesGiveEachCallerItsOwnReplies() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        let roundTrips = Atomic(0)
        let counting = RedisClient(configuration: redis.configuration()) { event in
            if case .roundTrip = event { roundTrips.add(1, ordering: .relaxed) }
        }
        defer { counting.close() }
        let failures = failuresAcrossThreads(8, 200) { thread, index in
            let key = "s\(thread)-\(index)", commands = thread % 2 == 0
                ? [["SET", key, key], ["GET", key]] : [["SET", key, key], ["STRLEN", key], ["GET", key]]
            let expected: [RedisValue] = thread % 2 == 0
                ? [.status("OK"), .bulk(Array(key.utf8))]
                : [.status("OK"), .integer(Int64(key.utf8.count)), .bulk(Array(key.utf8))]
            return (try? counting.sharedPipeline(commands.map { $0.map { Array($0.utf8) } })) == expected
        }
        #expect(failures == 0)
        #expect(try client.command("DBSIZE") == .integer(1600))
        #expect(roundTrips.load(ordering: .relaxed) <= 1600)

        redis.stop()
        let errors = failuresAcrossThreads(8, 20, within: 30) { _, _ in
            (try? counting.sharedPipeline([[Array("PING".utf8)]])) != nil
        }
        #expect(errors == 160, "every queued caller fails (nil: one was left waiting)")
    }

    /// `submit` does not wait: many submissions from one thread share round trips on the writer thread, each
    /// completion gets its own replies; with the breaker open the completion runs at once, on the caller's thread.
    @Test func submissionsCompleteLaterInSharedRoundTripsAndAtOnceWhenTheBreakerIsOpen() throws {
        let redis = try RedisServer()
        let roundTrips = Atomic(0)
        let client = RedisClient(configuration: redis.configuration(probeInterval: .seconds(30))) { event in
            if case .roundTrip = event { roundTrips.add(1, ordering: .relaxed) }
        }
        defer { client.close() }
        let right = Atomic(0), done = DispatchGroup()
        for index in 0..<500 {
            done.enter()
            client.submit(RedisCommands([["INCR", "n"], ["SET", "k\(index)", "\(index)"]].map { $0.map { Array($0.utf8) } })) { result in
                if case .success(let replies) = result, replies.count == 2, replies[1] == .status("OK"),
                   case .integer = replies[0] { right.add(1, ordering: .relaxed) }
                done.leave()
            }
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(right.load(ordering: .relaxed) == 500)
        #expect(try client.command("GET", "n") == .bulk(Array("500".utf8)))
        #expect(roundTrips.load(ordering: .relaxed) <= 400, "submissions queued while a round trip was out share the next")

        redis.stop()
        let failed = DispatchSemaphore(value: 0)
        client.submit(RedisCommands([[Array("PING".utf8)]])) { result in
            if case .failure = result { failed.signal() }
        }
        #expect(failed.wait(timeout: .now() + 10) == .success)
        #expect(client.state == .unavailable)
        let inline = Atomic(false)
        client.submit(RedisCommands([[Array("PING".utf8)]])) { result in
            if case .failure(let error) = result, error.kind == .circuitOpen { inline.store(true, ordering: .relaxed) }
        }
        let ranInline = inline.load(ordering: .relaxed)
        #expect(ranInline, "with the breaker open the completion runs before submit returns")
    }

    @Test func breakerOpensWhenRedisDiesAndClosesWithin2sOfItsReturn() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration(probeInterval: .milliseconds(250)))
        defer { client.close() }
        _ = try client.command("SET", "k", "v")

        redis.stop()
        let failed = #expect(throws: RedisError.self) { try client.command("GET", "k") }
        #expect(failed?.kind == .connection)
        #expect(client.state == .unavailable)
        // While open, calls fail at once instead of waiting out a timeout.
        let clock = ContinuousClock()
        let skipped = clock.measure {
            for _ in 0..<100 { #expect(throws: RedisError.self) { try client.command("GET", "k") } }
        }
        #expect(skipped < .milliseconds(100))
        #expect((try? client.command("GET", "k")) == nil)
        #expect(client.lastError?.kind == .connection)

        Thread.sleep(forTimeInterval: 0.5)  // a few failed probes
        try redis.start()
        let back = clock.now
        while client.state == .unavailable, clock.now - back < .seconds(5) { usleep(10_000) }
        let recovery = clock.now - back
        #expect(client.state == .available)
        #expect(recovery < .seconds(2), "recovered after \(recovery)")
        #expect(try client.command("PING") == .status("PONG"))
    }

    @Test func staleConnectionsAfterARestartAreReplacedNotFailed() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration())
        defer { client.close() }
        // Several idle connections in the pool.
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                _ = try? client.command("PING")
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        redis.kill9()
        try redis.start()
        // Between the calls Redis went away and came back: the next call must not see an outage.
        #expect(try client.command("PING") == .status("PONG"))
        #expect(client.state == .available)
    }

    @Test func aSlowRedisTimesOutAndIsSkippedUntilItAnswersAgain() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration(commandTimeout: .milliseconds(200)))
        defer { client.close() }
        _ = try client.command("PING")
        redis.sendInBackground("DEBUG", "SLEEP", "1.5")
        Thread.sleep(forTimeInterval: 0.1)
        let clock = ContinuousClock()
        let start = clock.now
        let failed = #expect(throws: RedisError.self) { try client.command("PING") }
        #expect(failed?.kind == .timeout)
        #expect(clock.now - start < .milliseconds(800))
        #expect(client.state == .unavailable)
        let afterTimeout = clock.now
        while client.state == .unavailable, clock.now - afterTimeout < .seconds(6) { usleep(10_000) }
        #expect(client.state == .available)
        #expect(try client.command("PING") == .status("PONG"))
    }

    @Test func clientPauseTimesOutWithoutStickingAnyThread() throws {
        let redis = try RedisServer()
        let client = RedisClient(configuration: redis.configuration(commandTimeout: .milliseconds(200)))
        defer { client.close() }
        _ = try client.command("PING")
        try redis.send("CLIENT", "PAUSE", "1500", "ALL")
        let clock = ContinuousClock()
        let start = clock.now
        let group = DispatchGroup()
        let answered = Atomic(0)
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for _ in 0..<50 where (try? client.command("GET", "x")) != nil { answered.add(1, ordering: .relaxed) }
            }
        }
        // 8 threads x 50 calls against a paused Redis: each thread waits out at most one timeout, then is skipped.
        #expect(group.wait(timeout: .now() + 5) == .success)
        #expect(clock.now - start < .seconds(1))
        #expect(answered.load(ordering: .relaxed) == 0)
        while client.state == .unavailable, clock.now - start < .seconds(6) { usleep(10_000) }
        #expect(client.state == .available)
        #expect(try client.command("GET", "x") == .null)
    }

    @Test func nothingListening() throws {
        let redis = try RedisServer()
        let configuration = redis.configuration()
        redis.stop()
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        let error = #expect(throws: RedisError.self) { try client.command("PING") }
        #expect(error?.kind == .connection)
        #expect(client.state == .unavailable)
    }
}

/// Runs `check(thread, index)` for every index below `iterations` on each of `threads` threads at once: how many
/// checks failed, or nil when the threads did not all finish within `seconds`.
private func failuresAcrossThreads(
    _ threads: Int, _ iterations: Int, within seconds: Double = 60, _ check: @escaping @Sendable (Int, Int) -> Bool
) -> Int? {
    let failures = Atomic(0)
    let group = DispatchGroup()
    for thread in 0..<threads {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            for index in 0..<iterations where !check(thread, index) { failures.add(1, ordering: .relaxed) }
        }
    }
    guard group.wait(timeout: .now() + seconds) == .success else { return nil }
    return failures.load(ordering: .relaxed)
}
