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
    String(SHA256.hex(Array(id.utf8)).prefix(2))
  }

  /// `tasks/<bb>/<id>`.
  public static func taskDirectory(_ id: String) -> String { "\(tasksDirectory)/\(bucket(of: id))/\(id)" }
  public static func recordPath(_ id: String) -> String { "\(taskDirectory(id))/record.json" }
  public static func taskFilePath(_ id: String) -> String { "\(taskDirectory(id))/task.md" }
  public static func errorsDirectory(_ id: String) -> String { "\(taskDirectory(id))/errors" }

  /// How `record.json` and `taskq.json` are written: pretty JSON, keys sorted, slashes unescaped, and a
  /// final newline. Every writer (transactions, sync's replay) uses this, so the bytes never differ.
  public static func storedJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
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
}
