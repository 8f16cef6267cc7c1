/// Fields of a task that the listing (`status`) and claims need, computed once when a record enters the
/// snapshot cache: the seconds of its status timestamp and the title of its task file.

/// Timestamps of records as seconds since 1970, without Foundation's date machinery and without
/// allocating: the form `Timestamp.iso` writes (`2026-11-25T10:15:00+00:00`, or with `Z`) is read in place;
/// anything else goes to ``Timestamp/parse(_:)``, which gives the same result for these forms.
public enum StatusTime {
  public static func seconds(_ text: String) -> Int? {
    if let fast = text.utf8.withContiguousStorageIfAvailable(canonical), let seconds = fast { return seconds }
    return Timestamp.parse(text)
  }

  /// `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM`, with a month from 1 to 12; `nil` otherwise.
  static func canonical(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
    guard b.count == 20 || b.count == 25 else { return nil }
    func digit(_ i: Int) -> Int? {
      let value = Int(b[i]) - 48
      return value >= 0 && value <= 9 ? value : nil
    }
    func number(_ i: Int, _ length: Int) -> Int? {
      var value = 0
      for position in i..<(i + length) {
        guard let d = digit(position) else { return nil }
        value = value * 10 + d
      }
      return value
    }
    guard b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
      b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
      let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
      let minute = number(14, 2), let second = number(17, 2), (1...12).contains(month)
    else { return nil }
    var offset = 0
    if b.count == 20 {
      guard b[19] == UInt8(ascii: "Z") else { return nil }
    } else {
      guard b[19] == UInt8(ascii: "+") || b[19] == UInt8(ascii: "-"), b[22] == UInt8(ascii: ":"),
        let offsetHours = number(20, 2), let offsetMinutes = number(23, 2)
      else { return nil }
      offset = (offsetHours * 3600 + offsetMinutes * 60) * (b[19] == UInt8(ascii: "-") ? -1 : 1)
    }
    return daysFromCivil(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second - offset
  }

  /// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (Howard Hinnant's algorithm).
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146097 + dayOfEra - 719468
  }
}

/// The title of a task: the first line of its task file's body, as `status` shows it.
public enum TaskTitle {
  /// The title of a task file: the first non-empty line of its body (after the frontmatter), without a
  /// heading's `#`.
  ///
  /// Read on the bytes when the file has no CR (with one, `\r\n` is a single character and lines split
  /// differently) and the line is ASCII; anything else takes ``slowTitle(ofTaskFile:)``, the same rule on
  /// characters. `status --all` reads 10,000 of these.
  public static func of(taskFile text: String) -> String? {
    let fast = text.utf8.withContiguousStorageIfAvailable { bytes -> String?? in
      guard !bytes.contains(UInt8(ascii: "\r")) else { return .none }
      // Line boundaries: (start, end) of each line, end exclusive.
      func line(from start: Int) -> (Int, Int) {
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
        return (start, end)
      }
      func isFence(_ range: (Int, Int)) -> Bool {
        range.1 - range.0 == 3 && bytes[range.0] == UInt8(ascii: "-") && bytes[range.0 + 1] == UInt8(ascii: "-")
          && bytes[range.0 + 2] == UInt8(ascii: "-")
      }
      var start = 0
      let first = line(from: 0)
      if isFence(first) {
        var next = first.1 + 1
        while next <= bytes.count {
          let candidate = line(from: next)
          if isFence(candidate) {
            start = candidate.1 + 1
            break
          }
          next = candidate.1 + 1
        }
      }
      func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
      var position = start
      while position <= bytes.count {
        let (from, to) = line(from: position)
        position = to + 1
        var ascii = true
        var blank = true
        for index in from..<to {
          if bytes[index] >= 0x80 { ascii = false }
          if !isBlank(bytes[index]) { blank = false }
        }
        guard ascii else { return .none }
        if blank { continue }
        var head = from
        while head < to && bytes[head] == UInt8(ascii: "#") { head += 1 }
        while head < to && isBlank(bytes[head]) { head += 1 }
        var tail = to
        while tail > head && isBlank(bytes[tail - 1]) { tail -= 1 }
        return .some(String(decoding: UnsafeBufferPointer(rebasing: bytes[head..<tail]), as: UTF8.self))
      }
      return .some(nil)
    }
    if let fast, let result = fast { return result }
    return slowTitle(ofTaskFile: text)
  }

  /// ``of(taskFile:)`` on characters.
  static func slowTitle(ofTaskFile text: String) -> String? {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
    if lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") { lines = lines[(end + 1)...] }
    guard let line = lines.first(where: { !$0.trimmingSpaces().isEmpty }) else { return nil }
    return line.drop { $0 == "#" }.trimmingSpaces()
  }
}
