import HashTreeCollections
import Testing
@testable import Exporter

/// The exporter cache's fast path says "nothing changed" when two versions of a map have the same bits
/// (`sameBits`). That is only sound while a `TreeDictionary` value is its root (storage reference and
/// count) and a mutation count and nothing else: these fail if a new swift-collections lays it out
/// otherwise.
@Suite struct SharingTests {
    static func map(_ n: Int) -> TreeDictionary<String, Int> {
        TreeDictionary(uniqueKeysWithValues: (0..<n).map { ("key-\($0)", $0) })
    }

    @Test func aCopySharesItsBits() {
        let a = Self.map(1_000)
        let b = a
        #expect(sameBits(a, b))
    }

    @Test(arguments: ["insert", "update", "remove", "same value"])
    func everyMutationOfACopyChangesItsBits(_ mutation: String) {
        let old = Self.map(1_000)
        var new = old
        switch mutation {
        case "insert": new["key-new"] = 1
        case "update": new["key-500"] = -1
        case "remove": new["key-500"] = nil
        default: new["key-500"] = 500
        }
        #expect(!sameBits(old, new), "\(mutation): a mutated copy still has the old bits")
        if mutation != "same value" { #expect(old != new) }
    }

    /// A map mutated in place (uniquely held) keeps its root but must not keep its bits: the mutation
    /// count is part of them.
    @Test func anInPlaceMutationChangesTheBits() {
        var a = Self.map(100)
        let before = withUnsafeBytes(of: a) { Array($0) }
        a["key-50"] = -1
        let after = withUnsafeBytes(of: a) { Array($0) }
        #expect(before != after)
    }

    /// The layout itself, as swift-collections 1.6 has it: the root's storage reference and element count,
    /// and the mutation count. Anything else would need `sameBits` looked at again.
    @Test func theLayoutIsARootAndAMutationCount() {
        #expect(MemoryLayout<TreeDictionary<String, Int>>.size == 3 * MemoryLayout<Int>.size)
    }
}
