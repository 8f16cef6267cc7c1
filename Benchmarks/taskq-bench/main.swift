import Foundation
import Git
import TaskQueue

// taskq-bench: the benchmark of issue 3 item 7. Run it with scripts/bench.sh (docs/performance.md).

let options = Options.parse(CommandLine.arguments)

if let repository = options.workerRepository {
  // A claiming worker process, spawned by the concurrency measurement: claim up to N tasks, print how many.
  do {
    let store = QueueStore(repository: try Repository.open(at: repository))
    var claimed = 0
    while claimed < options.workerCount, try Claiming.claimOne(store) != nil { claimed += 1 }
    print(claimed)
    exit(0)
  } catch {
    printError("taskq-bench worker: \(error)\n")
    exit(1)
  }
}

if let directory = options.directory { BenchRepository.parentDirectory = directory }

do {
  let suite = Suite(options: options)
  let loadBefore = loadAverage()
  print(
    "load average (1 min) before: \(loadBefore) on \(ProcessInfo.processInfo.activeProcessorCount) cores; "
      + "repositories in \(describeDirectory(BenchRepository.parentDirectory))")
  try suite.run()
  let load =
    "Temporary repositories in \(describeDirectory(BenchRepository.parentDirectory)). "
    + "Load average (1 min): \(loadBefore) before, \(loadAverage()) after, on \(ProcessInfo.processInfo.activeProcessorCount) cores."
  let machine = options.machine ?? Machine.describe()
  let command =
    (["scripts/bench.sh"]
    + CommandLine.arguments.dropFirst().filter { $0 != options.machine }.filter { $0 != "--machine" }).joined(
      separator: " ")
  try FileManager.default.createDirectory(atPath: options.output, withIntermediateDirectories: true)
  let file = options.output + "/results.md"
  try suite.results.markdown(machine: machine, command: command, load: load).write(
    toFile: file, atomically: true, encoding: .utf8)
  print("\nwrote \(file)")
  BenchRepository.removeAll()
} catch {
  BenchRepository.removeAll()
  printError("taskq-bench: \(error)\n")
  exit(1)
}
