#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One measurement: wall time, and the CPU time (user + system) the work itself used.
///
/// On a shared machine other work stretches wall time; CPU time is what the same run would take on an idle
/// machine, near enough, so the results show both.
struct Timing {
  var wall: Double
  var cpu: Double
  /// The child's peak resident memory in bytes (`ru_maxrss`), for spawned children; 0 in process.
  var maxRSS: Int = 0
}

/// Clocks in seconds.
enum Clock {
  static func now() -> Double { read(CLOCK_MONOTONIC) }

  /// CPU time of this process so far.
  static func cpu() -> Double { read(CLOCK_PROCESS_CPUTIME_ID) }

  private static func read(_ clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// Runs `body` in this process and returns its timing with its result.
  static func measure<T>(_ body: () throws -> T) rethrows -> (Timing, T) {
    let startCPU = cpu()
    let start = now()
    let value = try body()
    return (Timing(wall: now() - start, cpu: cpu() - startCPU), value)
  }
}

/// Summary of repeated timings (seconds in, milliseconds out).
struct Sample {
  var wall: [Double]
  var cpu: [Double]

  /// The largest peak resident memory of the runs, in bytes.
  var maxRSS: Int

  init(_ timings: [Timing]) {
    wall = timings.map(\.wall).sorted()
    cpu = timings.map(\.cpu).sorted()
    maxRSS = timings.map(\.maxRSS).max() ?? 0
  }

  var count: Int { wall.count }
  var median: Double { Self.quantile(wall, 0.5) * 1000 }
  var p90: Double { Self.quantile(wall, 0.9) * 1000 }
  var cpuMedian: Double { Self.quantile(cpu, 0.5) * 1000 }

  /// `p90 12.3 ms, cpu 9.80 ms`, for the notes column.
  var spread: String { "p90 \(ms(p90)), cpu \(ms(cpuMedian))" }

  /// The peak resident memory in MB.
  var maxRSSMegabytes: Double { Double(maxRSS) / 1_048_576 }

  private static func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let position = q * Double(sorted.count - 1)
    let lower = Int(position)
    let upper = Swift.min(lower + 1, sorted.count - 1)
    let fraction = position - Double(lower)
    return sorted[lower] * (1 - fraction) + sorted[upper] * fraction
  }
}

/// Writes a line to standard error.
func printError(_ text: String) {
  let line = text.hasSuffix("\n") ? text : text + "\n"
  _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}
