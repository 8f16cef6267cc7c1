#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to a file descriptor (1: stdout, 2: stderr), safe from any thread.
public enum Output {
  public static func write(_ text: String, to fd: Int32) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeMutableBytes { raw in
        Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
      }
      if n <= 0 { break }
      offset += n
    }
  }

  /// Whether `fd` is a terminal.
  public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
}
