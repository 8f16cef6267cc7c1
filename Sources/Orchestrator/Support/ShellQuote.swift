/// Quotes `text` for a POSIX shell when it needs it (for commands we print, never for commands we run).
public func shellQuote(_ text: String) -> String {
  let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-:@=+,".contains($0) }
  return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
