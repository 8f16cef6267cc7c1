#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where things live in a queue commit's tree (storage format version 1, see docs/storage-format.md).
public enum Layout {
  public static let refName = "refs/taskq/queue"
  public static let formatVersion = 1
  public static let metaPath = "taskq.json"
  public static let tasksDirectory = "tasks"

  /// The bucket of a task: the first two hex digits of the SHA-256 of its UTF-8 id.
  public static func bucket(of id: String) -> String {
    let first = SHA256.digest(Array(id.utf8))[0]
    let digits: StaticString = "0123456789abcdef"
    return digits.withUTF8Buffer { hex in
      String(decoding: [hex[Int(first >> 4)], hex[Int(first & 0x0f)]], as: UTF8.self)
    }
  }

  /// `tasks/<bb>/<id>`.
  public static func taskDirectory(_ id: String) -> String { "\(tasksDirectory)/\(bucket(of: id))/\(id)" }
  public static func recordPath(_ id: String) -> String { "\(taskDirectory(id))/record.json" }
  public static func taskFilePath(_ id: String) -> String { "\(taskDirectory(id))/task.md" }
  public static func errorsDirectory(_ id: String) -> String { "\(taskDirectory(id))/errors" }

  /// How `record.json` and `taskq.json` are written: pretty JSON, keys sorted, slashes unescaped, and a
  /// final newline. Every writer (transactions, sync's replay) uses this, so the bytes never differ.
  public static func storedJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    // The two kinds written on every transaction, without `JSONEncoder` (about a tenth of a transition's
    // CPU): the same bytes, checked against it in `StoredJSONTests`.
    if let record = value as? TaskRecord, RecordJSON.isComplete {
      var bytes = Array(RecordJSON.object(record).utf8)
      bytes.append(UInt8(ascii: "\n"))
      return bytes
    }
    if let meta = value as? QueueMeta { return meta.storedJSON }
    return try encodedJSON(value)
  }

  /// ``storedJSON(_:)`` through `JSONEncoder`, for any value (the reference the fast paths are tested
  /// against).
  public static func encodedJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(UInt8(ascii: "\n"))
    return Array(data)
  }

  /// A `<rev>:<path>` name that `git show` understands.
  public static func revisionPath(_ path: String) -> String { "\(refName):\(path)" }
}

/// The content of `taskq.json`: the format guard and the FIFO counter.
public struct QueueMeta: Codable, Equatable, Sendable {
  public var format: Int
  public var nextSeq: Int

  public init(format: Int = Layout.formatVersion, nextSeq: Int = 1) {
    self.format = format
    self.nextSeq = nextSeq
  }

  enum CodingKeys: String, CodingKey {
    case format
    case nextSeq = "next_seq"
  }

  /// `taskq.json` as ``Layout/storedJSON(_:)`` writes it (pretty, keys sorted, a final newline).
  var storedJSON: [UInt8] {
    Array("{\n  \"format\" : \(format),\n  \"next_seq\" : \(nextSeq)\n}\n".utf8)
  }

  /// Reads `taskq.json` in exactly the form ``storedJSON`` writes (every writer's), without `JSONDecoder`;
  /// `nil` for anything else (other spacing, other keys, a number that is not plain digits), which the
  /// caller then gives to `JSONDecoder`.
  static func parseStored(_ bytes: [UInt8]) -> (format: Int, nextSeq: Int)? {
    var position = 0
    func expect(_ text: StaticString) -> Bool {
      let count = text.utf8CodeUnitCount
      guard position + count <= bytes.count else { return false }
      let matches = text.withUTF8Buffer { expected in
        (0..<count).allSatisfy { bytes[position + $0] == expected[$0] }
      }
      if matches { position += count }
      return matches
    }
    func number() -> Int? {
      let start = position
      while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
      let digits = position - start
      // JSON has no leading zeros; 18 digits cannot overflow.
      guard digits > 0, digits <= 18, digits == 1 || bytes[start] != 0x30 else { return nil }
      return bytes[start..<position].reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
    guard expect("{\n  \"format\" : "), let format = number(), expect(",\n  \"next_seq\" : "),
      let next = number(), expect("\n}")
    else { return nil }
    // What JSON allows after the value: whitespace only.
    guard bytes[position...].allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
      return nil
    }
    return (format, next)
  }
}
