/// Quotes `text` for a POSIX shell when it needs it: for command lines we print (hints, `--print`,
/// ``ProcessSpec/commandLine``), never for commands we run (those are argv arrays).
public func shellQuote(_ text: String) -> String {
  let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-:@=+,".contains($0) }
  if safe && !text.isEmpty { return text }
  var quoted = "'"
  for character in text {
    if character == "'" { quoted += "'\\''" } else { quoted.append(character) }
  }
  return quoted + "'"
}

/// The first `limit` of `items`, each in single quotes, comma-separated, with `, …` when some were left
/// out: how a refusal names the paths it is about (`'a.txt', 'b/', …`).
func quotedList(_ items: [String], limit: Int) -> String {
  items.prefix(limit).map { "'\($0)'" }.joined(separator: ", ") + (items.count > limit ? ", …" : "")
}
