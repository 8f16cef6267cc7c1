/// The YAML subset of a task file's frontmatter: a reader and a writer, without a YAML library.
///
/// Task files hold a flat mapping of a few keys to strings, an integer and a list of ids. The reader
/// accepts exactly the YAML that the Python taskq (PyYAML), Yams (earlier canonical files) and people write
/// for that: one top-level mapping; plain, single-quoted and double-quoted scalars, also folded over
/// several lines; a list as a block (`- a`) or on one line (`[a, b]`); comments. Everything else YAML has
/// (anchors and aliases, tags, block scalars `|`/`>`, flow mappings, complex keys, documents) is refused
/// with the line it is on, so nothing can expand, nest without bound or mean something else than it reads.
enum Frontmatter {
  /// A value as the task file's keys need it. A nested mapping is kept only as "a mapping" (every key
  /// refuses one), so its content is never interpreted.
  enum Value: Equatable {
    case null
    case scalar(String)
    case sequence([Value])
    case mapping
  }

  struct Entry: Equatable {
    var key: String
    var value: Value
    /// The line of the key, counted in the whole task file.
    var line: Int
  }

  /// A refusal: what is wrong, and the line of the task file it is on.
  struct SyntaxError: Error, Equatable {
    var line: Int
    var problem: String
    /// Not YAML at all, as opposed to YAML that is not a mapping of keys.
    var isMalformed = true
  }

  /// How deep `[…]` lists may nest (task files need one level; two gives a clear "must be a list of ids").
  static let maximumDepth = 8

  // MARK: Reading

  /// Parses the lines between the two `---` lines (without line ends); `firstLine` is the task file's
  /// number of the first of them.
  static func parse(_ text: [Substring], firstLine: Int) throws(SyntaxError) -> [Entry] {
    var reader = Reader(lines: text.map { Array($0.unicodeScalars) }, firstLine: firstLine)
    return try reader.entries()
  }

  private struct Reader {
    let lines: [[Unicode.Scalar]]
    let firstLine: Int
    var index = 0

    init(lines: [[Unicode.Scalar]], firstLine: Int) {
      self.lines = lines
      self.firstLine = firstLine
    }

    func number(_ index: Int) -> Int { firstLine + index }

    func malformed(_ index: Int, _ problem: String) -> SyntaxError {
      SyntaxError(line: number(index), problem: problem)
    }

    /// Leading spaces of a line; a tab among them is refused (YAML forbids tabs for indentation).
    func indentation(_ index: Int) throws(SyntaxError) -> Int {
      var count = 0
      for scalar in lines[index] {
        if scalar == " " {
          count += 1
        } else if scalar == "\t" {
          throw malformed(index, "a tab indents this line (indent with spaces)")
        } else {
          break
        }
      }
      return count
    }

    /// Blank, or only a comment.
    func isEmpty(_ index: Int) -> Bool {
      guard let first = lines[index].first(where: { $0 != " " && $0 != "\t" }) else { return true }
      return first == "#"
    }

    func nextContentLine(after index: Int) -> Int? {
      var next = index + 1
      while next < lines.count {
        if !isEmpty(next) { return next }
        next += 1
      }
      return nil
    }

    mutating func entries() throws(SyntaxError) -> [Entry] {
      var result: [Entry] = []
      var seen: [String: Int] = [:]
      while index < lines.count {
        if isEmpty(index) {
          index += 1
          continue
        }
        guard try indentation(index) == 0 else {
          throw malformed(index, "this line is indented, but no key above it takes an indented value")
        }
        let line = lines[index]
        let keyLine = index
        var cursor = Cursor(line)
        let key: String
        switch line[0] {
        case "-" where line.count == 1 || line[1] == " ":
          throw SyntaxError(
            line: number(index), problem: "the frontmatter must be a mapping of keys to values, not a list",
            isMalformed: false)
        case "?" where line.count == 1 || line[1] == " ":
          throw malformed(index, "complex keys ('? ') are not supported")
        case "[", "{":
          throw SyntaxError(
            line: number(index), problem: "frontmatter keys must be plain words", isMalformed: false)
        case "&", "*":
          throw aliasOrAnchor(index)
        case "\"", "'":
          key = try quotedOnOneLine(&cursor, index)
          cursor.skipSpaces()
          guard cursor.peek == ":" else { throw malformed(index, "a quoted key must be followed by ':'") }
          cursor.advance()
        default:
          guard let colon = Self.keyColon(line) else {
            throw SyntaxError(
              line: number(index), problem: "the frontmatter must be a mapping of keys to values ('key: value')",
              isMalformed: false)
          }
          key = Self.trimmed(String(String.UnicodeScalarView(line[0..<colon])))
          cursor.position = colon + 1
        }
        if let first = seen[key] {
          throw malformed(keyLine, "duplicate key '\(QueueError.printable(key))' (first at line \(first))")
        }
        seen[key] = number(keyLine)
        guard cursor.atEnd || cursor.peek == " " else {
          throw malformed(index, "a key's ':' must be followed by a space")
        }
        let value = try valueAfterKey(&cursor, indentation: 0)
        result.append(Entry(key: key, value: value, line: number(keyLine)))
      }
      return result
    }

    /// The column of the ':' that ends a plain key: the first one followed by a space or the line end.
    static func keyColon(_ line: [Unicode.Scalar]) -> Int? {
      var position = 0
      while position < line.count {
        if line[position] == "#", position > 0, line[position - 1] == " " { return nil }
        if line[position] == ":", position + 1 == line.count || line[position + 1] == " " {
          return position
        }
        position += 1
      }
      return nil
    }

    /// The value after `key:` on line `index` (the cursor just past the ':'); leaves `index` on the line
    /// after the value.
    mutating func valueAfterKey(_ cursor: inout Cursor, indentation parent: Int) throws(SyntaxError) -> Value {
      cursor.skipSpaces()
      if !cursor.atEnd && cursor.peek != "#" {
        return try inlineValue(&cursor, parent: parent)
      }
      // Nothing on the key's line: a block list, an indented value, or no value.
      let keyLine = index
      guard let next = nextContentLine(after: keyLine) else {
        index = lines.count
        return .null
      }
      let indent = try indentation(next)
      let line = lines[next]
      if line[indent] == "-", indent + 1 == line.count || line[indent + 1] == " ", indent >= parent {
        index = next
        return try blockSequence(indentation: indent)
      }
      guard indent > parent else {
        index = keyLine + 1
        return .null
      }
      index = next
      if Self.keyColon(Array(line[indent...])) != nil {
        // A nested mapping: skip it whole; no key of a task file takes one.
        while let following = nextContentLine(after: index), try indentation(following) > parent {
          index = following
        }
        index += 1
        return .mapping
      }
      var cursor = Cursor(line, at: indent)
      return try inlineValue(&cursor, parent: parent)
    }

    mutating func blockSequence(indentation indent: Int) throws(SyntaxError) -> Value {
      var items: [Value] = []
      while true {
        var cursor = Cursor(lines[index], at: indent + 1)
        cursor.skipSpaces()
        if cursor.atEnd || cursor.peek == "#" {
          throw malformed(index, "a list item has no value")
        }
        if cursor.peek == "-", cursor.position + 1 == lines[index].count || lines[index][cursor.position + 1] == " " {
          throw malformed(index, "nested block lists are not supported")
        }
        items.append(try inlineValue(&cursor, parent: indent))
        guard let next = nextContentLine(after: index - 1), try indentation(next) == indent,
          lines[next][indent] == "-", indent + 1 == lines[next].count || lines[next][indent + 1] == " "
        else { break }
        index = next
      }
      return .sequence(items)
    }

    /// A value that starts at the cursor: a quoted or plain scalar (continued on lines indented deeper than
    /// `parent`) or a one-line `[…]` list. Leaves `index` on the line after it.
    mutating func inlineValue(_ cursor: inout Cursor, parent: Int) throws(SyntaxError) -> Value {
      guard let first = cursor.peek else { return .null }
      switch first {
      case "&", "*": throw aliasOrAnchor(index)
      case "!": throw malformed(index, "YAML tags ('!') are not supported")
      case "|", ">": throw malformed(index, "block scalars ('|', '>') are not supported (use a quoted value)")
      case "{": throw malformed(index, "flow mappings ('{…}') are not supported")
      case "%", "@", "`": throw malformed(index, "a value cannot start with '\(first)' (quote it)")
      case "[":
        let value = try flowSequence(&cursor, depth: 1)
        try expectLineEnd(&cursor)
        index += 1
        return value
      case "\"", "'":
        let text = try quoted(&cursor)
        try expectLineEnd(&cursor)
        index += 1
        return .scalar(text)
      case "-" where cursor.position + 1 == lines[index].count || lines[index][cursor.position + 1] == " ":
        throw malformed(index, "a list item cannot follow a key on the same line")
      default:
        return try plain(&cursor, parent: parent)
      }
    }

    func aliasOrAnchor(_ index: Int) -> SyntaxError {
      SyntaxError(
        line: number(index),
        problem: "the frontmatter uses a YAML alias or anchor ('*name', '&name'), which task files do not support",
        isMalformed: false)
    }

    /// After a value: only spaces and a comment.
    func expectLineEnd(_ cursor: inout Cursor) throws(SyntaxError) {
      let hadSpace = cursor.skipSpaces()
      guard cursor.atEnd || (cursor.peek == "#" && hadSpace) else {
        throw malformed(index, "unexpected text after the value")
      }
    }

    /// A plain scalar, folded over the following lines that are indented deeper than `parent`.
    mutating func plain(_ cursor: inout Cursor, parent: Int) throws(SyntaxError) -> Value {
      var (text, endedByComment) = try plainPiece(&cursor)
      index += 1
      var pendingBreaks = 0
      while !endedByComment, index < lines.count {
        if lines[index].allSatisfy({ $0 == " " || $0 == "\t" }) {
          pendingBreaks += 1
          index += 1
          continue
        }
        let indent = try indentation(index)
        guard indent > parent, lines[index][indent] != "#" else { break }
        var next = Cursor(lines[index], at: indent)
        let (piece, comment) = try plainPiece(&next)
        text += pendingBreaks == 0 ? " " : String(repeating: "\n", count: pendingBreaks)
        text += piece
        pendingBreaks = 0
        endedByComment = comment
        index += 1
      }
      if ["", "~", "null", "Null", "NULL"].contains(text) { return .null }
      return .scalar(text)
    }

    /// The rest of one line of a plain scalar, up to a comment; refuses what YAML would read otherwise.
    func plainPiece(_ cursor: inout Cursor) throws(SyntaxError) -> (String, endedByComment: Bool) {
      var scalars = String.UnicodeScalarView()
      var endedByComment = false
      while let scalar = cursor.peek {
        if scalar == "#", scalars.last == " " {
          endedByComment = true
          break
        }
        if scalar == ":", cursor.position + 1 == cursor.line.count || cursor.line[cursor.position + 1] == " " {
          throw malformed(index, "a value contains ': ' (quote the value)")
        }
        scalars.append(scalar)
        cursor.advance()
      }
      return (Self.trimmed(String(scalars)), endedByComment)
    }

    /// A `[…]` list on one line, of scalars (and lists, for a clear refusal by the key).
    func flowSequence(_ cursor: inout Cursor, depth: Int) throws(SyntaxError) -> Value {
      guard depth <= maximumDepth else { throw malformed(index, "lists nest deeper than \(maximumDepth) levels") }
      cursor.advance()  // "["
      var items: [Value] = []
      while true {
        cursor.skipSpaces()
        guard let scalar = cursor.peek else {
          throw malformed(index, "the list has no closing ']' on its line")
        }
        if scalar == "]" {
          cursor.advance()
          return .sequence(items)
        }
        switch scalar {
        case "[": items.append(try flowSequence(&cursor, depth: depth + 1))
        case "\"", "'":
          var quotedCursor = cursor
          let text = try quotedOnOneLine(&quotedCursor, index)
          cursor = quotedCursor
          items.append(.scalar(text))
        case "&", "*": throw aliasOrAnchor(index)
        case "{": throw malformed(index, "flow mappings ('{…}') are not supported")
        case "!": throw malformed(index, "YAML tags ('!') are not supported")
        case ",": throw malformed(index, "the list has an empty item")
        default:
          var scalars = String.UnicodeScalarView()
          while let next = cursor.peek, next != ",", next != "]" {
            if next == "[" || next == "{" || next == "}" { throw malformed(index, "unexpected '\(next)' in a list") }
            if next == "#", scalars.last == " " { throw malformed(index, "the list has no closing ']' on its line") }
            if next == ":", cursor.position + 1 == cursor.line.count || cursor.line[cursor.position + 1] == " " {
              throw malformed(index, "flow mappings ('a: b' inside '[…]') are not supported")
            }
            scalars.append(next)
            cursor.advance()
          }
          let text = Self.trimmed(String(scalars))
          items.append(["~", "null", "Null", "NULL"].contains(text) ? .null : .scalar(text))
        }
        cursor.skipSpaces()
        if cursor.peek == "," {
          cursor.advance()
        } else if cursor.atEnd {
          throw malformed(index, "the list has no closing ']' on its line")
        } else if cursor.peek != "]" {
          throw malformed(index, "expected ',' or ']' in the list")
        }
      }
    }

    /// A quoted scalar that must close on its line (keys, list items).
    func quotedOnOneLine(_ cursor: inout Cursor, _ index: Int) throws(SyntaxError) -> String {
      var copy = self
      copy.index = index
      let text = try copy.quoted(&cursor, multiLine: false)
      return text
    }

    /// A single- or double-quoted scalar starting at the cursor; when it does not close on its line, it
    /// continues on the next ones (folded: a line break is a space, an empty line a line break; in double
    /// quotes a '\' at the end of a line joins the lines). Leaves `index` on the closing quote's line.
    mutating func quoted(_ cursor: inout Cursor, multiLine: Bool = true) throws(SyntaxError) -> String {
      let quote = cursor.peek
      let isDouble = quote == "\""
      let startLine = index
      cursor.advance()
      var text = String.UnicodeScalarView()
      while true {
        var escapedBreak = false
        while let scalar = cursor.peek {
          if scalar == quote {
            if !isDouble, cursor.position + 1 < cursor.line.count, cursor.line[cursor.position + 1] == "'" {
              text.append("'")
              cursor.advance()
              cursor.advance()
              continue
            }
            cursor.advance()
            return String(text)
          }
          if isDouble && scalar == "\\" {
            cursor.advance()
            guard let escape = cursor.peek else {
              // An escaped line break: the next line follows without a space.
              escapedBreak = true
              break
            }
            text.append(try unescape(escape, &cursor))
            continue
          }
          text.append(scalar)
          cursor.advance()
        }
        guard multiLine, index + 1 < lines.count else {
          throw malformed(startLine, "the quoted value is not closed")
        }
        // Fold: trailing spaces go (unless escaped), then the breaks and the next line's leading spaces.
        if !escapedBreak {
          while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        }
        var breaks = 0
        index += 1
        while index < lines.count, lines[index].allSatisfy({ $0 == " " || $0 == "\t" }) {
          breaks += 1
          index += 1
        }
        guard index < lines.count else { throw malformed(startLine, "the quoted value is not closed") }
        if breaks > 0 {
          text.append(contentsOf: String(repeating: "\n", count: breaks).unicodeScalars)
        } else if !escapedBreak {
          text.append(" ")
        }
        cursor = Cursor(lines[index])
        while let scalar = cursor.peek, scalar == " " || scalar == "\t" { cursor.advance() }
      }
    }

    /// The character a double-quoted escape stands for (the cursor on the letter after the backslash).
    func unescape(_ escape: Unicode.Scalar, _ cursor: inout Cursor) throws(SyntaxError) -> Unicode.Scalar {
      cursor.advance()
      let simple: [Unicode.Scalar: Unicode.Scalar] = [
        "0": "\u{0}", "a": "\u{7}", "b": "\u{8}", "t": "\t", "\t": "\t", "n": "\n", "v": "\u{B}", "f": "\u{C}",
        "r": "\r", "e": "\u{1B}", " ": " ", "\"": "\"", "/": "/", "\\": "\\", "N": "\u{85}", "_": "\u{A0}",
        "L": "\u{2028}", "P": "\u{2029}",
      ]
      if let scalar = simple[escape] { return scalar }
      let digits: Int
      switch escape {
      case "x": digits = 2
      case "u": digits = 4
      case "U": digits = 8
      default:
        throw malformed(index, "unknown escape '\\\(Character(escape))' in a double-quoted value")
      }
      var value: UInt32 = 0
      for _ in 0..<digits {
        guard let scalar = cursor.peek, scalar.isASCII, let digit = Int(String(scalar), radix: 16) else {
          throw malformed(index, "'\\\(Character(escape))' needs \(digits) hexadecimal digits")
        }
        value = value * 16 + UInt32(digit)
        cursor.advance()
      }
      guard let scalar = Unicode.Scalar(value) else {
        throw malformed(index, "'\\\(Character(escape))' names no Unicode character")
      }
      return scalar
    }

    static func trimmed(_ text: String) -> String {
      var scalars = Substring(text).unicodeScalars
      while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
      while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
      return String(scalars)
    }
  }

  /// A position in one line.
  private struct Cursor {
    let line: [Unicode.Scalar]
    var position: Int

    init(_ line: [Unicode.Scalar], at position: Int = 0) {
      self.line = line
      self.position = position
    }

    var atEnd: Bool { position >= line.count }
    var peek: Unicode.Scalar? { atEnd ? nil : line[position] }
    mutating func advance() { position += 1 }

    /// Skips spaces; says whether there were any.
    @discardableResult
    mutating func skipSpaces() -> Bool {
      let start = position
      while let scalar = peek, scalar == " " { advance() }
      return position > start
    }
  }

  /// `text` without white space (Unicode's, line breaks included) at either end.
  static func trimmingWhiteSpace(_ line: some StringProtocol) -> String {
    var scalars = Substring(line).unicodeScalars
    while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
    while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
    return String(scalars)
  }

  // MARK: Writing

  /// One string as a YAML scalar that every YAML reader (and ``parse(_:firstLine:)``) reads back as that
  /// same string: plain when that is unambiguous, else single-quoted, else double-quoted with escapes.
  /// Never more than one line.
  static func scalar(_ text: String) -> String {
    if isPlainSafe(text) { return text }
    if text.unicodeScalars.allSatisfy(isPrintable) {
      return "'" + text.replacing("'", with: "''") + "'"
    }
    var result = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\t": result += "\\t"
      case "\r": result += "\\r"
      case "\u{0}": result += "\\0"
      case "\u{85}": result += "\\N"
      case "\u{2028}": result += "\\L"
      case "\u{2029}": result += "\\P"
      default:
        if isPrintable(scalar) {
          result.unicodeScalars.append(scalar)
        } else {
          let hex = String(scalar.value, radix: 16, uppercase: true)
          result +=
            scalar.value <= 0xFF
            ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            : "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }
      }
    }
    return result + "\""
  }

  /// The block a list of strings is written as, one `- item` line each.
  static func blockList(_ items: [String]) -> String {
    items.map { "- \(scalar($0))\n" }.joined()
  }

  static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x20...0x7E: true
    case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xD800...0xDFFF, 0xFFFE, 0xFFFF: false
    default: true
    }
  }

  /// Whether `text` can be written without quotes and is read back as this string (not a number, a
  /// boolean or null, in YAML 1.1 or 1.2).
  static func isPlainSafe(_ text: String) -> Bool {
    let scalars = Array(text.unicodeScalars)
    guard let first = scalars.first, let last = scalars.last else { return false }
    if "-?:,[]{}#&*!|>'\"%@`~= \t".unicodeScalars.contains(first) { return false }
    // Numbers (also "+1", ".5", "1:20", dates), in YAML 1.1 as in 1.2.
    if first.properties.numericType != nil { return false }
    if first == "+" || first == "." {
      if scalars.count > 1, scalars[1].properties.numericType != nil || scalars[1] == "." { return false }
      if first == "+" && scalars.count == 1 { return false }
    }
    if last == " " || last == ":" { return false }
    if !scalars.allSatisfy({ isPrintable($0) }) { return false }
    for index in scalars.indices.dropLast() {
      let (a, b) = (scalars[index], scalars[index + 1])
      if (a == ":" && b == " ") || (a == " " && b == "#") { return false }
      if "[]{},".unicodeScalars.contains(a) { return false }
    }
    if "[]{},".unicodeScalars.contains(last) { return false }
    let words: Set<String> = [
      "null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "+.inf", ".nan", "<<",
    ]
    return !words.contains(text.lowercased())
  }
}
