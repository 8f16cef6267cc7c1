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
