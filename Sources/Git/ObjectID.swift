import CLibGit2

/// A git object id (SHA-1), a value type.
public struct ObjectID: Hashable, Sendable, CustomStringConvertible {
  var raw: git_oid

  init(_ raw: git_oid) { self.raw = raw }

  /// Parses a full 40-digit hexadecimal id (either case); `nil` when `hex` is not one.
  ///
  /// In Swift, not through libgit2: reading the snapshot cache parses ids, and must not load libgit2.
  public init?(hex: String) {
    var hex = hex
    guard let raw = hex.withUTF8({ Self.parse($0) }) else { return nil }
    self.raw = raw
  }

  private static func parse(_ digits: UnsafeBufferPointer<UInt8>) -> git_oid? {
    guard digits.count == 40 else { return nil }
    var oid = git_oid()
    let valid = withUnsafeMutableBytes(of: &oid.id) { bytes -> Bool in
      for index in 0..<20 {
        guard let high = nibble(digits[2 * index]), let low = nibble(digits[2 * index + 1]) else { return false }
        bytes[index] = high << 4 | low
      }
      return true
    }
    return valid ? oid : nil
  }

  private static func nibble(_ digit: UInt8) -> UInt8? {
    switch digit {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
    default: nil
    }
  }

  /// The 40 lowercase hexadecimal digits (in Swift, as the parse).
  public var hex: String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    return withUnsafeBytes(of: raw.id) { bytes in
      String(unsafeUninitializedCapacity: 40) { out in
        for (index, byte) in bytes.enumerated() {
          out[2 * index] = digits[Int(byte >> 4)]
          out[2 * index + 1] = digits[Int(byte & 0x0f)]
        }
        return 40
      }
    }
  }

  public var description: String { hex }

  public static func == (lhs: ObjectID, rhs: ObjectID) -> Bool {
    withUnsafeBytes(of: lhs.raw.id) { l in withUnsafeBytes(of: rhs.raw.id) { r in l.elementsEqual(r) } }
  }

  public func hash(into hasher: inout Hasher) {
    withUnsafeBytes(of: raw.id) { hasher.combine(bytes: $0) }
  }
}
