#if canImport(Glibc)
import Glibc
#endif

/// Command-line options of `taskq-bench`.
struct Options {
  /// Spawned runs per CLI measurement (the median is reported).
  var runs = 21
  /// Queue sizes for `add`.
  var addSizes = [100, 1_000, 10_000]
  /// Queue sizes for `status`.
  var statusSizes = [1_000, 10_000]
  /// The queue of the scale measurements (issue 15); 0 leaves them out.
  var largeSize = 100_000
  /// Tasks in the concurrency measurement, and how many of them the 4 processes move.
  var concurrentTasks = 1_000
  var concurrentOperations = 400
  var processes = 4
  /// Where the markdown results go.
  var output = "bench-results"
  /// Where the temporary repositories go (default `/var/tmp`).
  var directory: String?
  /// A description of the machine for the results (nproc, memory, CPU, Swift, libgit2).
  var machine: String?
  /// The `git-taskq` binary to time (default: next to this one).
  var binary: String?
  /// Only these measurements (`startup`, `add`, `status`, `transition`, `concurrent`, `profile`, `scale`,
  /// `cleanup`); all when empty.
  var only: Set<String> = []
  /// Internal: run as one claiming worker process (spawned by the concurrency measurement).
  var workerRepository: String?
  var workerCount = 0

  static let usage = """
    usage: taskq-bench [--quick] [--runs N] [--out DIR] [--dir DIR] [--binary PATH] [--large N]
                   [--only startup,add,status,transition,concurrent,profile,scale,cleanup]

    Times git-taskq in temporary repositories and writes DIR/results.md (default bench-results/).
      --quick   smaller queues and fewer runs, for a smoke test (figures are not comparable)
      --large   the queue size of the scale rows (default 100000; 0 leaves them out)
      --dir     where to make the temporary repositories (default /var/tmp; /dev/shm takes the disk out)
    """

  static func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var rest = arguments.dropFirst()
    func value() -> String {
      guard let next = rest.popFirst() else {
        printError("taskq-bench: missing value\n\(usage)\n")
        exit(64)
      }
      return next
    }
    while let argument = rest.popFirst() {
      switch argument {
      case "--runs": options.runs = Int(value()) ?? options.runs
      case "--out": options.output = value()
      case "--machine": options.machine = value()
      case "--dir": options.directory = value()
      case "--binary": options.binary = value()
      case "--large": options.largeSize = Int(value()) ?? options.largeSize
      case "--only": options.only = Set(value().split(separator: ",").map(String.init))
      case "--quick":
        options.runs = 5
        options.addSizes = [100, 1_000]
        options.statusSizes = [1_000]
        options.concurrentTasks = 200
        options.concurrentOperations = 80
        options.largeSize = 0
      case "--worker-claim":
        options.workerRepository = value()
        options.workerCount = Int(value()) ?? 0
      case "-h", "--help":
        print(usage)
        exit(0)
      default:
        printError("taskq-bench: unknown argument '\(argument)'\n\(usage)\n")
        exit(64)
      }
    }
    return options
  }

  func wants(_ name: String) -> Bool { only.isEmpty || only.contains(name) }
}

/// The absolute path of this executable.
func executablePath() -> String {
  var buffer = [CChar](repeating: 0, count: 4096)
  let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
  guard n > 0 else { return CommandLine.arguments[0] }
  return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
