#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The terminal's size, for cutting `--watch` frames to the window.
enum TerminalSize {
  static func current() -> (rows: Int, columns: Int) {
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 {
      return (Int(size.ws_row), Int(size.ws_col))
    }
    let environment = ProcessInfo.processInfo.environment
    return (environment["LINES"].flatMap(Int.init) ?? 24, environment["COLUMNS"].flatMap(Int.init) ?? 80)
  }
}
