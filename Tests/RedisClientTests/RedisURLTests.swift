import RedisClient
import Testing

@Suite struct RedisURLTests {
    @Test func parsesHostPortDatabaseAndPassword() throws {
        let plain = try RedisConfiguration(url: "redis://cache:6380")
        #expect(plain.host == "cache" && plain.port == 6380 && plain.database == 0 && plain.password == nil)

        let full = try RedisConfiguration(url: "redis://:s%40cret@10.0.0.5:7000/3")
        #expect(full.host == "10.0.0.5" && full.port == 7000 && full.database == 3)
        #expect(full.password == "s@cret" && full.username == nil)
        #expect(full.redactedURL == "redis://:***@10.0.0.5:7000/3")

        let user = try RedisConfiguration(url: "redis://app:pw@host/0")
        #expect(user.username == "app" && user.password == "pw" && user.port == 6379)

        let v6 = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(v6.host == "::1" && v6.port == 6390 && v6.database == 1)
        #expect(try RedisConfiguration(url: "redis://localhost").port == 6379)
        #expect(try RedisConfiguration(url: "redis://localhost/").database == 0)
    }

    @Test(arguments: [
        "", "http://host:1", "rediss://host:6379", "redis://", "redis://:6379", "redis://host:0", "redis://host:65536",
        "redis://host:abc", "redis://host:/1", "redis://host:1/x", "redis://host:1/-1", "redis://host:1?db=2",
        "redis://:%zz@host:1", "redis://[::1:1",
    ])
    func rejectsMalformedURLs(_ url: String) {
        #expect(throws: RedisURLError.self) { try RedisConfiguration(url: url) }
    }
}
