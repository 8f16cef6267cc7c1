/// Reads `record.json` in exactly the form every writer writes it (``Layout/storedJSON(_:)``: pretty, keys
/// sorted, as ``RecordJSON/object(_:)`` writes), without `JSONDecoder`, which was a fifth of a transition.
///
/// Anything else (other spacing or key order, an escape the writer does not make, a `null` where the field
/// has a default, a number that is not plain digits, invalid UTF-8) returns `nil`, and the caller decodes it
/// with `JSONDecoder` as before: the result is always what `JSONDecoder` gives (`StoredJSONTests`).
enum StoredRecord {
  static func parse(_ bytes: [UInt8]) -> TaskRecord? {
    var reader = Reader(bytes: bytes)
    return reader.record()
  }

  private struct Reader {
    let bytes: [UInt8]
    var position = 0

    mutating func expect(_ text: StaticString) -> Bool {
      let count = text.utf8CodeUnitCount
      guard position + count <= bytes.count else { return false }
      let matches = text.withUTF8Buffer { expected in
        var index = 0
        while index < count {
          if bytes[position + index] != expected[index] { return false }
          index += 1
        }
        return true
      }
      if matches { position += count }
      return matches
    }

    /// `"key" : ` after `{` or `,` and a newline with two spaces.
    mutating func key(_ text: StaticString, first: Bool = false) -> Bool {
      guard expect(first ? "{\n  \"" : ",\n  \""), expect(text), expect("\" : ") else { return false }
      return true
    }

    mutating func int() -> Int? {
      var negative = false
      if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
        negative = true
        position += 1
      }
      let start = position
      while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
      let digits = position - start
      guard digits > 0, digits <= 18, digits == 1 || bytes[start] != 0x30 else { return nil }
      let value = bytes[start..<position].reduce(0) { $0 * 10 + Int($1 - 0x30) }
      if negative && value == 0 { return nil }
      return negative ? -value : value
    }

    /// A string, or `.some(nil)` for `null` when `nullable`; `nil` when neither.
    mutating func optionalString() -> String?? {
      if expect("null") { return .some(nil) }
      guard let value = string() else { return nil }
      return .some(value)
    }

    mutating func optionalInt() -> Int?? {
      if expect("null") { return .some(nil) }
      guard let value = int() else { return nil }
      return .some(value)
    }

    /// A JSON string with only the escapes the writer makes; `nil` for anything else.
    mutating func string() -> String? {
      guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
      position += 1
      var out: [UInt8] = []
      while position < bytes.count {
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""):
          return String(validating: out, as: UTF8.self)
        case UInt8(ascii: "\\"):
          guard position < bytes.count else { return nil }
          let escape = bytes[position]
          position += 1
          switch escape {
          case UInt8(ascii: "\""): out.append(0x22)
          case UInt8(ascii: "\\"): out.append(0x5C)
          case UInt8(ascii: "b"): out.append(0x08)
          case UInt8(ascii: "f"): out.append(0x0C)
          case UInt8(ascii: "n"): out.append(0x0A)
          case UInt8(ascii: "r"): out.append(0x0D)
          case UInt8(ascii: "t"): out.append(0x09)
          case UInt8(ascii: "u"):
            // `\u00xx` for a control character, as the writer makes it.
            guard position + 4 <= bytes.count, bytes[position] == 0x30, bytes[position + 1] == 0x30,
              let high = hex(bytes[position + 2]), let low = hex(bytes[position + 3]), high < 2
            else { return nil }
            out.append(high << 4 | low)
            position += 4
          default: return nil
          }
        default:
          guard byte >= 0x20 else { return nil }
          out.append(byte)
        }
      }
      return nil
    }

    func hex(_ byte: UInt8) -> UInt8? {
      switch byte {
      case 0x30...0x39: return byte - 0x30
      case 0x61...0x66: return byte - 0x61 + 10
      default: return nil
      }
    }

    mutating func strings() -> [String]? {
      guard expect("[") else { return nil }
      if expect("\n\n  ]") { return [] }
      var values: [String] = []
      repeat {
        guard expect("\n    "), let value = string() else { return nil }
        values.append(value)
      } while expect(",")
      guard expect("\n  ]") else { return nil }
      return values
    }

    mutating func record() -> TaskRecord? {
      guard key("attempt", first: true), let attempt = int(),
        key("base"), let base = string(),
        key("branch"), let branch = string(),
        key("container"), let container = optionalString(),
        key("created_at"), let createdAt = string(),
        key("depends_on"), let dependsOn = strings(),
        key("error_file"), let errorFile = optionalString(),
        key("id"), let id = string(),
        key("last_error"), let lastError = optionalString(),
        key("lease_expires_at"), let leaseExpiresAt = optionalString(),
        key("port"), let port = optionalInt(),
        key("priority"), let priority = int(),
        key("repo"), let repo = string(),
        key("seq"), let seq = int(),
        key("session_id"), let sessionID = optionalString(),
        key("status"), let statusText = string(), let status = TaskStatus(rawValue: statusText),
        key("status_changed_at"), let statusChangedAt = optionalString(),
        key("task_file"), let taskFile = string(),
        key("updated_at"), let updatedAt = string(),
        key("worker"), let worker = optionalString(),
        key("worktree_path"), let worktreePath = optionalString(),
        expect("\n}")
      else { return nil }
      // What JSON allows after the value: whitespace only.
      while position < bytes.count {
        guard [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) else { return nil }
        position += 1
      }
      var record = TaskRecord(
        id: id, repo: repo, base: base, branch: branch, taskFile: taskFile, status: status,
        worktreePath: worktreePath, attempt: attempt, createdAt: createdAt, seq: seq, priority: priority,
        dependsOn: dependsOn)
      record.updatedAt = updatedAt
      record.statusChangedAt = statusChangedAt
      record.container = container
      record.port = port
      record.sessionID = sessionID
      record.errorFile = errorFile
      record.worker = worker
      record.leaseExpiresAt = leaseExpiresAt
      record.lastError = lastError
      return record
    }
  }
}
