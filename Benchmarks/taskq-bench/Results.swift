import Foundation

/// One line of the results table.
struct Row {
  var measure: String
  var tasks: String
  /// The figure, already formatted (`14.2 ms`, `182 /s`).
  var value: String
  var target: String
  /// `true` met, `false` missed, `nil` no target.
  var met: Bool?
  /// The Python tool's figure, when the issue gives one.
  var python: String = ""
  var note: String = ""
}

/// The rows collected so far, printed as they come and written as markdown at the end.
final class Results {
  private(set) var rows: [Row] = []
  private(set) var details: [String] = []

  func add(_ row: Row) {
    rows.append(row)
    let verdict = row.met.map { $0 ? "ok" : "MISSED" } ?? ""
    let line = [
      pad(row.measure, 44), pad(row.tasks, 7), pad(row.value, 12), pad(row.target, 10), pad(verdict, 7),
      pad(row.python, 10), row.note,
    ].joined(separator: " ")
    print(line)
    fflush(nil)
  }

  /// A free-form line for the breakdown section.
  func detail(_ text: String) {
    details.append(text)
    print("  · " + text)
    fflush(nil)
  }

  static func header() {
    print(
      [
        pad("measure", 44), pad("tasks", 7), pad("result", 12), pad("target", 10), pad("", 7),
        pad("python", 10), "note",
      ].joined(separator: " "))
    print(String(repeating: "-", count: 110))
  }

  func markdown(machine: String, command: String, load: String) -> String {
    var lines: [String] = []
    lines.append("# taskq-bench results")
    lines.append("")
    lines.append("Command: `\(command)`")
    lines.append("")
    lines.append(machine)
    lines.append("")
    lines.append(load)
    lines.append("")
    lines.append("| measure | tasks | result | target | | Python taskq | note |")
    lines.append("|---|---:|---:|---:|---|---:|---|")
    for row in rows {
      let verdict = row.met.map { $0 ? "✅" : "❌" } ?? ""
      lines.append(
        "| \(row.measure) | \(row.tasks) | \(row.value) | \(row.target) | \(verdict) | \(row.python) | \(row.note) |")
    }
    if !details.isEmpty {
      lines.append("")
      lines.append("## Where the time goes")
      lines.append("")
      for detail in details { lines.append("- " + detail) }
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

func pad(_ text: String, _ width: Int) -> String {
  text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func ms(_ value: Double) -> String { String(format: value < 10 ? "%.2f ms" : "%.1f ms", value) }

func tasksLabel(_ n: Int) -> String {
  n >= 1000 && n % 1000 == 0 ? "\(n / 1000)k" : "\(n)"
}

/// The 1-minute load average (other work on the machine makes every figure slower and noisier).
func loadAverage() -> String {
  (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init)
    ?? "?"
}

/// The directory and the type of its file system (from `/proc/mounts`), for the results.
func describeDirectory(_ path: String) -> String {
  let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
  var best: (point: String, type: String) = ("", "")
  for line in mounts.split(separator: "\n") {
    let fields = line.split(separator: " ")
    guard fields.count > 2 else { continue }
    let point = String(fields[1])
    let covers = point == "/" || path == point || path.hasPrefix(point + "/")
    if covers && point.count > best.point.count { best = (point, String(fields[2])) }
  }
  return best.type.isEmpty ? path : "\(path) (\(best.type))"
}

/// What this machine is, when `scripts/bench.sh` did not say (it passes `--machine`).
enum Machine {
  static func describe() -> String {
    let cpu =
      (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
      .split(separator: "\n").first { $0.hasPrefix("model name") }
      .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
      ?? "unknown"
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
    return "Machine: \(cpu), \(cores) cores, \(String(format: "%.0f", memory)) GiB RAM; release build."
  }
}
