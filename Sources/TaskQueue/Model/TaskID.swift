/// Validation of task ids.
///
/// An id becomes a path component in the ref's tree, part of the branch `task/<id>`, a directory name and
/// part of a container name, so only `[A-Za-z0-9][A-Za-z0-9._-]*` is accepted, at most 64 characters,
/// without `..` and not ending in `.lock` or `.`.
public enum TaskID {
  public static let maximumLength = 64

  /// Throws ``QueueError/invalidID(_:reason:)`` unless `id` is safe everywhere it is used.
  public static func validate(_ id: String) throws {
    if let reason = problem(with: id) { throw QueueError.invalidID(id, reason: reason) }
  }

  /// Whether `id` is acceptable (``problem(with:)`` is `nil`), in one pass over its bytes without
  /// allocating: the snapshot cache checks every id it decodes.
  public static func isValid(_ id: String) -> Bool {
    var count = 0
    var previous: UInt8 = 0
    for b in id.utf8 {
      let alnum = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
      guard alnum || (count > 0 && (b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")))
      else { return false }
      if b == UInt8(ascii: ".") && previous == UInt8(ascii: ".") { return false }
      previous = b
      count += 1
      guard count <= maximumLength else { return false }
    }
    guard count > 0, previous != UInt8(ascii: ".") else { return false }
    return previous != UInt8(ascii: "k") || !id.hasSuffix(".lock")
  }

  /// Why `id` is not acceptable, or `nil` when it is.
  public static func problem(with id: String) -> String? {
    let bytes = Array(id.utf8)
    guard let first = bytes.first else { return "it is empty" }
    if bytes.count > maximumLength { return "it is longer than \(maximumLength) characters" }
    func alnum(_ b: UInt8) -> Bool {
      (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
    }
    guard alnum(first) else { return "it must start with a letter or digit" }
    for b in bytes where !(alnum(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")) {
      return "only letters, digits, '.', '_' and '-' are allowed"
    }
    if id.contains("..") { return "it must not contain '..'" }
    if id.hasSuffix(".lock") { return "it must not end in '.lock'" }
    if id.hasSuffix(".") { return "it must not end in '.'" }
    return nil
  }
}
