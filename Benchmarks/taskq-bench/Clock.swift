#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A monotonic clock in seconds.
enum Clock {
  static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// Runs `body` and returns its wall time in seconds with its result.
  static func measure<T>(_ body: () throws -> T) rethrows -> (Double, T) {
    let start = now()
    let value = try body()
    return (now() - start, value)
  }
}

/// Summary of repeated timings (seconds in, milliseconds out).
struct Sample {
  var seconds: [Double]

  init(_ seconds: [Double]) { self.seconds = seconds.sorted() }

  var count: Int { seconds.count }
  var median: Double { quantile(0.5) * 1000 }
  var p90: Double { quantile(0.9) * 1000 }
  var min: Double { (seconds.first ?? 0) * 1000 }
  var max: Double { (seconds.last ?? 0) * 1000 }

  private func quantile(_ q: Double) -> Double {
    guard !seconds.isEmpty else { return 0 }
    let position = q * Double(seconds.count - 1)
    let lower = Int(position)
    let upper = Swift.min(lower + 1, seconds.count - 1)
    let fraction = position - Double(lower)
    return seconds[lower] * (1 - fraction) + seconds[upper] * fraction
  }
}

/// Writes a line to standard error.
func printError(_ text: String) {
  let line = text.hasSuffix("\n") ? text : text + "\n"
  _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}
