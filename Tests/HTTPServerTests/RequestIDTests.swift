@testable import HTTPServer
import Testing

@Test func generatedRequestIDsSpellBothNumbersInHex() {
    #expect(generatedRequestID(prefix: 0x0A1B_2C3D, sequence: 0) == "0a1b2c3d-0")
    #expect(generatedRequestID(prefix: 0, sequence: 0x1F) == "00000000-1f")
    #expect(generatedRequestID(prefix: 0xFFFF_FFFF, sequence: 0x9_0000_000A) == "ffffffff-90000000a")
    #expect(generatedRequestID(prefix: 0x8967_4523, sequence: 0xFEDC_BA98_7654_3210) == "89674523-fedcba9876543210")
    #expect(generatedRequestID(prefix: 1, sequence: 0xABCDEF) == "00000001-abcdef")
}
