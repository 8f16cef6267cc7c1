/// Text from the queue made safe for a terminal.
///
/// Every record, task file, report and trailer may come from another machine through a git remote, so
/// nothing of it may reach a terminal as a control sequence: an ESC starts a CSI or OSC sequence (clear
/// the screen, change the title, write to the clipboard), BEL rings, CR rewrites the line, C1 controls
/// (U+0080–U+009F) are single-character CSI/OSC on some terminals, and bidirectional overrides reorder
/// what is shown. Every text output of queue data goes through ``line(_:)`` or ``block(_:)``; JSON output
/// does not (its encoder escapes controls as `\u001b`, and programs need the exact value).
public enum TerminalText {
  /// `text` as one line: every control character, newline and tab included, shown as a visible escape
  /// in Swift's notation, the one error messages use (`\u{1b}`, `\u{7}`, `\u{d}`, `\u{a}`, `\u{9b}`,
  /// `\u{202e}`).
  public static func line(_ text: String) -> String {
    visible(text, keepingLines: false)
  }

  /// `text` with its lines and tabs kept and every other control character shown as in ``line(_:)``: for
  /// task bodies and reports. A CR before a newline (CRLF) is dropped rather than shown.
  public static func block(_ text: String) -> String {
    visible(text, keepingLines: true)
  }

  /// Whether `scalar` must not reach a terminal raw.
  @inline(__always)
  static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    let v = scalar.value
    return v < 0x20 || (0x7f...0x9f).contains(v) || (0x202a...0x202e).contains(v) || (0x2066...0x2069).contains(v)
      || v == 0x2028 || v == 0x2029 || v == 0x200e || v == 0x200f || v == 0x061c
  }

  private static func visible(_ text: String, keepingLines: Bool) -> String {
    // The common case, plain text, costs one scan and no copy.
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = String.UnicodeScalarView()
    let scalars = Array(text.unicodeScalars)
    for (index, scalar) in scalars.enumerated() {
      guard isControl(scalar) else {
        out.append(scalar)
        continue
      }
      if keepingLines {
        if scalar == "\n" || scalar == "\t" {
          out.append(scalar)
          continue
        }
        if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { continue }
      }
      let shown = "\\u{\(String(scalar.value, radix: 16))}"
      out.append(contentsOf: shown.unicodeScalars)
    }
    return String(out)
  }
}
