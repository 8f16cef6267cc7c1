/// The few string and path functions of full Foundation that this code uses, for FoundationEssentials
/// (which lacks them): full Foundation loads ICU and costs every process milliseconds of start-up
/// (issue 15). Each does what its Foundation namesake does for the inputs used here.
extension StringProtocol {
  /// Without spaces and tabs at either end (`trimmingCharacters(in: .whitespaces)`).
  public func trimmingSpaces() -> String {
    trimming { $0 == "\t" || $0.properties.generalCategory == .spaceSeparator }
  }

  /// Without white space and line breaks at either end (`trimmingCharacters(in: .whitespacesAndNewlines)`).
  public func trimmingWhitespace() -> String {
    trimming { $0.properties.isWhitespace }
  }

  /// Without line breaks at either end (`trimmingCharacters(in: .newlines)`).
  public func trimmingLineBreaks() -> String {
    trimming { "\n\u{B}\u{C}\r\u{85}\u{2028}\u{2029}".unicodeScalars.contains($0) }
  }

  /// Without the scalars that `drop` accepts at either end.
  public func trimming(where drop: (Unicode.Scalar) -> Bool) -> String {
    var scalars = Substring(self).unicodeScalars
    while let first = scalars.first, drop(first) { scalars.removeFirst() }
    while let last = scalars.last, drop(last) { scalars.removeLast() }
    return String(scalars)
  }

  /// Padded with spaces on the right to `width` characters (`padding(toLength:withPad:startingAt:)`, which
  /// also cuts longer strings).
  public func padded(to width: Int) -> String {
    count >= width ? String(prefix(width)) : String(self) + String(repeating: " ", count: width - count)
  }
}

/// Path names as `NSString` takes them apart, without touching the file system.
public enum PathName {
  /// `/a/b.md` → `b.md`; `/a/b/` → `b`; `/` → `/`.
  public static func lastComponent(_ path: String) -> String {
    let parts = path.split(separator: "/")
    guard let last = parts.last else { return path.isEmpty ? "" : "/" }
    return String(last)
  }

  /// `/a/b` → `/a`; `/a` → `/`; `a` → `` (empty); `a/b/` → `a`.
  public static func deletingLastComponent(_ path: String) -> String {
    var parts = path.split(separator: "/")
    guard !parts.isEmpty else { return path.hasPrefix("/") ? "/" : "" }
    parts.removeLast()
    let joined = parts.joined(separator: "/")
    return path.hasPrefix("/") ? "/" + joined : joined
  }

  /// `b.md` → `b`; `T.v2.md` → `T.v2`; `.profile` and `noext` stay as they are.
  public static func deletingExtension(_ name: String) -> String {
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex, !name[dot...].contains("/") else {
      return name
    }
    return String(name[..<dot])
  }
}

/// `x` with one decimal (`String(format: "%.1f", x)`).
public func oneDecimal(_ x: Double) -> String {
  let tenths = Int((abs(x) * 10).rounded())
  return (x < 0 && tenths != 0 ? "-" : "") + "\(tenths / 10).\(tenths % 10)"
}

/// `byte` as two lower-case hexadecimal digits (`String(format: "%02x", byte)`).
public func twoHexDigits(_ byte: UInt8) -> String {
  let digits = Array("0123456789abcdef")
  return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
}
