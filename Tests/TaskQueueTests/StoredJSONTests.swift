import Foundation
import Testing

@testable import TaskQueue

/// `record.json` and `taskq.json` are written and read without `JSONEncoder`/`JSONDecoder` on the write
/// path: the bytes must stay exactly the encoder's, and every `taskq.json` must read as the decoder reads it.
@Suite struct StoredJSONTests {
  /// Strings that JSON writers disagree on: escapes, control characters, slashes, non-ASCII, separators,
  /// decomposed and precomposed accents (equal as Swift strings, different as bytes).
  static let hostile = [
    "", "plain", "a/b/c", "quote \" and backslash \\", "new\nline\ttab\rreturn", "\u{08}\u{0C}\u{01}\u{1F}\u{7F}",
    "\u{00}nul", "ünïcödé ✓ 🚀", "e\u{301} vs \u{E9}", "\u{2028}\u{2029}", "</script>", "\\u0041", "{\"a\":1}",
    "\u{FEFF}bom", "trailing space ", String(repeating: "x\"", count: 300),
  ]

  static func reference<T: Encodable>(_ value: T) throws -> [UInt8] { try Layout.encodedJSON(value) }

  @Test func recordJSONIsTheEncodersBytes() throws {
    for (index, text) in Self.hostile.enumerated() {
      var record = TaskRecord(
        id: "T-\(index)", repo: text, base: text, branch: text, taskFile: text,
        status: TaskStatus.allCases[index % TaskStatus.allCases.count], worktreePath: index % 2 == 0 ? text : nil,
        attempt: index * 7, createdAt: text, seq: index == 3 ? Int.max : index - 2,
        priority: index == 4 ? Int.min : -index,
        dependsOn: index % 3 == 0 ? [] : [text, "T-0", text])
      record.updatedAt = text
      record.statusChangedAt = index % 2 == 0 ? nil : text
      if index % 2 == 1 {
        record.container = text
        record.port = 65_535 - index
        record.sessionID = text
        record.errorFile = text
        record.worker = text
        record.leaseExpiresAt = text
        record.lastError = text
      }
      let fast = try Layout.storedJSON(record)
      #expect(fast == (try Self.reference(record)), "record \(index): \(String(decoding: fast, as: UTF8.self))")
      #expect(fast.last == UInt8(ascii: "\n"))
      // Read back without JSONDecoder (19-digit numbers excepted: handed to it), exactly as it reads.
      let decoded = try JSONDecoder().decode(TaskRecord.self, from: Data(fast))
      if index != 3 && index != 4 {
        let parsed = try #require(StoredRecord.parse(fast), "record \(index) was not read by the fast path")
        #expect(Self.sameBytes(parsed, decoded), "record \(index)")
      }
      #expect(Self.sameBytes(try QueueSnapshot.decodeRecord(fast), decoded))
    }
  }

  /// Equal field by field as bytes (`==` on `String` would call a decomposed accent equal to a precomposed one).
  static func sameBytes(_ a: TaskRecord, _ b: TaskRecord) -> Bool {
    (try? Layout.encodedJSON(a)) == (try? Layout.encodedJSON(b)) && a == b
  }

  /// `record.json` in other forms than the writer's: read as `JSONDecoder` reads them (or refused alike).
  @Test(arguments: [
    #"{"id":"T-1","repo":".","base":"main","status":"todo","created_at":"x"}"#,
    #"{"attempt":null,"base":"m","branch":null,"created_at":"c","id":"T-1","repo":".","status":"todo"}"#,
    #"{"id":"T-1","repo":".","base":"m","status":"nope","created_at":"x"}"#,
    #"{"id":"T-1","repo":".","base":"\u0041\/\ud83d\ude80","status":"todo","created_at":"x"}"#,
    #"{"id":"T-1","repo":".","base":"m","status":"todo","created_at":"x","seq":01}"#,
    #"{"id":"T-1","repo":".","base":"m","status":"todo","created_at":"x","seq":1.0}"#,
    "not json", "",
  ])
  func otherRecordFormsReadAsJSONDecoderReadsThem(_ text: String) throws {
    let bytes = Array(text.utf8)
    let expected: String
    do {
      let decoded = try JSONDecoder().decode(TaskRecord.self, from: Data(bytes))
      expected = String(decoding: try Layout.encodedJSON(decoded), as: UTF8.self)
    } catch {
      expected = "refused"
    }
    let actual = (try? QueueSnapshot.decodeRecord(bytes)).flatMap { try? Layout.encodedJSON($0) }.map {
      String(decoding: $0, as: UTF8.self)
    }
    #expect((actual ?? "refused") == expected)
  }

  /// The writer's form with one byte changed anywhere: the fast path reads it exactly as `JSONDecoder` does,
  /// or leaves it to it.
  @Test func everyOneByteDamageReadsAsJSONDecoderReadsIt() throws {
    var record = TaskRecord(
      id: "T-7", repo: ".", base: "main", branch: "task/T-7", taskFile: "f", status: .planning, attempt: 2,
      createdAt: "2026-12-03T10:00:00Z", seq: 12, priority: 3, dependsOn: ["T-1", "T-2"])
    record.port = 8080
    record.worker = "host:1"
    let bytes = try Layout.storedJSON(record)
    for index in bytes.indices {
      for replacement: UInt8 in [0x20, 0x22, 0x30, 0x39, 0x5C, 0x0A, 0x6E, 0xFF] where bytes[index] != replacement {
        var damaged = bytes
        damaged[index] = replacement
        guard let fast = StoredRecord.parse(damaged) else { continue }
        let slow = try? JSONDecoder().decode(TaskRecord.self, from: Data(damaged))
        #expect(slow.map { Self.sameBytes(fast, $0) } == true, "byte \(index) → \(replacement)")
      }
    }
  }

  @Test(arguments: [(1, 1), (1, 2), (1, 10_000), (1, 100_001), (2, 5), (0, 0), (1, Int.max), (-1, -7)])
  func metaJSONIsTheEncodersBytesAndReadsBack(_ format: Int, _ next: Int) throws {
    let meta = QueueMeta(format: format, nextSeq: next)
    let bytes = try Layout.storedJSON(meta)
    #expect(bytes == (try Self.reference(meta)))
    // What was written reads back as the decoder reads it (values, or the same refusal).
    #expect(outcome { try QueueSnapshot.decodeMeta(bytes) } == outcome { try Self.decodedByJSONDecoder(bytes) })
  }

  /// `taskq.json` as other writers could leave it: the fast reader takes only the exact stored form and
  /// hands everything else to `JSONDecoder`, so the result is always the decoder's.
  @Test(arguments: [
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n}",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n}\n\n \t",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n}x",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n}\n{}",
    "{\n  \"format\" : 01,\n  \"next_seq\" : 42\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 042\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 0\n}\n",
    "{\n  \"format\" : 2,\n  \"next_seq\" : 3\n}\n",
    "{\n  \"format\" : 0,\n  \"next_seq\" : 3\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 99999999999999999999999\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 4.5\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 4e2\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : -4\n}\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42,\n  \"extra\" : true\n}\n",
    "{\"format\":1,\"next_seq\":42}",
    "{\"next_seq\":42,\"format\":1}",
    "{\"format\":1}",
    "{\n  \"format\" : 1,\n  \"next_seq\" : 42\n",
    "{\n  \"format\" : 1,\n  \"next_seq\" : ",
    "",
    "null",
  ])
  func metaIsReadAsJSONDecoderReadsIt(_ text: String) throws {
    let bytes = Array(text.utf8)
    #expect(outcome { try QueueSnapshot.decodeMeta(bytes) } == outcome { try Self.decodedByJSONDecoder(bytes) })
  }

  /// `decodeMeta` through `JSONDecoder` alone, as it was before the fast reader (with the range of
  /// `next_seq` since).
  static func decodedByJSONDecoder(_ bytes: [UInt8]) throws -> QueueMeta {
    struct Fields: Decodable {
      var format: Int
      var nextSeq: Int?
      enum CodingKeys: String, CodingKey {
        case format
        case nextSeq = "next_seq"
      }
    }
    guard let object = try? JSONDecoder().decode(Fields.self, from: Data(bytes)) else {
      throw QueueError.corrupt("taskq.json is not valid")
    }
    if object.format > Layout.formatVersion {
      throw QueueError.newerFormat(found: object.format, supported: Layout.formatVersion)
    }
    guard object.format >= 1, let next = object.nextSeq, next >= 1 else {
      throw QueueError.corrupt("taskq.json is not valid")
    }
    // The range every reader keeps exact, and far from an overflow (a red-team break: Int.max crashed add).
    guard next <= 1 << 53 else {
      throw QueueError.corrupt("taskq.json is not valid: next_seq \(next) is above \(1 << 53)")
    }
    return QueueMeta(format: object.format, nextSeq: next)
  }

  /// A value or an error, comparable.
  func outcome(_ body: () throws -> QueueMeta) -> String {
    do {
      let meta = try body()
      return "meta \(meta.format) \(meta.nextSeq)"
    } catch {
      return "error \(error)"
    }
  }

  @Test func aCommitsHeaderIsReadFromItsBytes() {
    let tree = String(repeating: "a", count: 40)
    let first = String(repeating: "b", count: 40)
    let second = String(repeating: "c", count: 40)
    let bytes = Array(
      "tree \(tree)\nparent \(first)\nparent \(second)\nauthor x <y> 1 +0000\ncommitter x <y> 1 +0000\n\nparent \(tree)\n"
        .utf8)
    let header = QueueStore.commitHeader(bytes)
    #expect(header.tree == tree)
    #expect(header.parents == [first, second])
    #expect(QueueStore.commitHeader(Array("parent \(first)\ntree \(tree)\n".utf8)).tree == nil)
    #expect(QueueStore.commitHeader([]).tree == nil)
  }
}
