import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

extension GitTaskq {
  struct Status: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the queue, grouped by status.",
      discussion: """
        Tasks are grouped in lifecycle order (todo, planning, building, review, failed, done, cancelled) \
        with counts; within a group the highest priority comes first, then the first added. Each line \
        shows the task's id, how long it has been in its status, its repository and base, its branch, \
        the attempt and the port of its server once it ran, and what it waits for: the dependencies of \
        a todo task, the worker of a running one, the first line of the latest error of a failed one.

        Colour follows git: --color=auto (the default) colours only when the output is a terminal; \
        the git config keys color.taskq, then color.ui, choose when no flag is given (always, never, \
        auto, true, false); a non-empty NO_COLOR environment variable turns colour off unless \
        --color=always is given.

        --watch redraws the screen every SECONDS (default 2) until interrupted (Ctrl-C), like \
        watch(1).

        --json prints the records instead (an array in first-in order; with --id the single record), \
        with the field names of the original taskq; see docs/json.md.

        Examples:
          git taskq status
          git taskq status --id T-001
          git taskq status --watch
          git taskq status --watch 10 --color=never
          git taskq status --json | jq '.[] | select(.status=="review")'
        """)

    @Option(help: ArgumentHelp("Show only this task.", valueName: "ID"), completion: .custom(TaskIDCompletion.complete))
    var id: String?

    @Flag(help: "Print JSON (see docs/json.md).")
    var json = false

    @Flag(help: "Show every task (by default at most 50 per group, and the 5 most recent done and cancelled).")
    var all = false

    @Option(
      name: .customLong("color"),
      help: ArgumentHelp(
        "When to colour: auto (default), always or never. A bare --color means always.", valueName: "WHEN"))
    var color: ColorWhen?

    @Flag(name: .customLong("no-color"), help: "Never colour (the same as --color=never).")
    var noColor = false

    @Option(
      name: .customLong("watch"), parsing: .unconditional,
      help: ArgumentHelp("Redraw every SECONDS (default 2) until interrupted.", valueName: "SECONDS"))
    var watchValue: Double?

    /// `--watch` alone: argument-parser cannot make an option's value optional, so `Entrypoint` rewrites a
    /// bare `--watch` to this marker, which means "the default interval".
    static let bareWatchValue = "-1"
    static let defaultWatchInterval = 2.0

    func validate() throws {
      if let watchValue, watchValue <= 0 && watchValue != -1 {
        throw ValidationError("--watch must be a positive number of seconds")
      }
      if watchValue != nil && json {
        throw ValidationError("--watch redraws the text view; it cannot be combined with --json")
      }
      if noColor && color != nil && color != .never {
        throw ValidationError("--no-color contradicts --color=\(color?.rawValue ?? "")")
      }
    }

    func run(_ context: CommandContext) async throws {
      if let id { try TaskID.validate(id) }
      if json {
        let snapshot = try context.store.snapshot()
        if let id {
          let record = try snapshot.existing(id)
          Console.printJSON(RecordJSON.object(record))
        } else {
          // Straight to standard output in pieces, from the cache's bytes when there is one: no `String`
          // and no buffer of the whole array (6.5 MB at 10,000 tasks).
          try RecordJSON.write(try snapshot.listing()) { Self.write($0, to: 1) }
          Self.write([UInt8(ascii: "\n")], to: 1)
        }
        return
      }
      let colored = ColorChoice.resolve(
        flag: noColor ? .never : color, configuration: context.settings.gitConfig,
        isTerminal: Output.isTerminal(1))
      guard let watchValue else {
        if let hint = ShareHint.once(repository: context.repository, remote: Sync.defaultRemote(context.settings)) {
          Console.error(hint)
        }
        let width = Output.isTerminal(1) ? TerminalSize.current().columns : nil
        var text = try screen(
          context, colored: colored, now: Timestamp.nowSeconds(), layout: StatusView.Layout(width: width, all: all))
        let configuration = context.settings.gitConfig
        if Pager.command(configuration: configuration) == nil {
          // Straight to standard output: one buffer, no `String` of the whole screen.
          text.append(UInt8(ascii: "\n"))
          Self.write(text, to: 1)
        } else {
          Pager.print(String(decoding: text, as: UTF8.self), configuration: configuration)
        }
        return
      }
      try await watch(context, every: watchValue < 0 ? Self.defaultWatchInterval : watchValue, colored: colored)
    }

    /// The text of one `status`: the remote line, then the groups (or why there are none), as UTF-8.
    func screen(_ context: CommandContext, colored: Bool, now: Int, layout: StatusView.Layout) throws -> [UInt8] {
      let snapshot = try context.store.snapshot()
      var view = StatusView(colored: colored, now: now)
      view.queueRepository = context.queueRepository
      var buffer: [UInt8] = []
      if let id {
        let record = try snapshot.existing(id)
        // Its dependencies are looked up in the whole queue, as for the full view.
        var lookup: [String: TaskRecord] = [:]
        for dependency in record.dependsOn { lookup[dependency] = try snapshot.record(dependency) }
        // The title of a task: the first line of its task file's body.
        let title: (String) -> String? = { id in (try? snapshot.taskFile(id)).flatMap { $0 }.flatMap(StatusView.title) }
        try view.render(QueueListing(records: [record], title: title), lookup: lookup, layout: layout, into: &buffer)
        return buffer
      }
      // Every task's status, priority, seq and timestamp; records and titles only for the rows shown.
      let records = try snapshot.listing()
      var layout = layout
      if let line = Self.remoteLine(context) {
        buffer.append(contentsOf: StatusView.fit(view.paint(line, .yellow), to: layout.width).utf8)
        buffer.append(UInt8(ascii: "\n"))
        layout.rows = layout.rows.map { $0 - 1 }
      }
      if records.isEmpty {
        buffer.append(contentsOf: "no tasks (add one with 'git taskq add')".utf8)
      } else {
        try view.render(records, layout: layout, into: &buffer)
      }
      return buffer
    }

    /// Redraws the screen every `interval` seconds until the process is interrupted.
    ///
    /// On a terminal each frame replaces the last (cut to the window's size, as watch(1) does); in a pipe frames follow each
    /// other, separated by a blank line.
    func watch(_ context: CommandContext, every interval: Double, colored: Bool) async throws {
      let terminal = Output.isTerminal(1)
      let header = "Every \(Self.formatSeconds(interval)): git taskq status" + (id.map { " --id \($0)" } ?? "")
      var first = true
      while true {
        let now = Timestamp.nowSeconds()
        let clock = String(Timestamp.iso(now).dropFirst(11).prefix(8)) + " UTC"
        var body: String
        let size = terminal ? TerminalSize.current() : nil
        do {
          // The header and its blank line take two rows (and one is kept free, as watch(1) does); long groups collapse to fit the rest.
          body = String(
            decoding: try screen(
              context, colored: colored, now: now,
              layout: StatusView.Layout(width: size?.columns, rows: size.map { $0.rows - 3 }, all: all)),
            as: UTF8.self)
        } catch {
          // A frame that cannot be read (the task was removed, a writer holds the lock) says so and the
          // watch goes on: the next frame may succeed.
          let text = (error as? any LocalizedError)?.errorDescription ?? "\(error)"
          body = StatusView(colored: colored, now: now).paint("error: \(TerminalText.line(text))", .red)
        }
        let top = StatusView(colored: colored, now: now).paint("\(header)    \(clock)    (Ctrl-C to stop)", .dim)
        var lines = [top, ""] + body.components(separatedBy: "\n")
        if let size {
          if lines.count > size.rows - 1 {
            lines = Array(lines.prefix(max(1, size.rows - 2))) + ["…"]
          }
          lines = lines.map { StatusView.truncate($0, toWidth: size.columns) }
          // Home, each line cleared to its end, then everything below cleared: no flicker, no leftovers.
          var frame = first ? "\u{1B}[H\u{1B}[2J" : "\u{1B}[H"
          frame += lines.map { $0 + "\u{1B}[K" }.joined(separator: "\n") + "\u{1B}[J"
          Output.write(frame, to: 1)
        } else {
          Output.write((first ? "" : "\n") + lines.joined(separator: "\n") + "\n", to: 1)
        }
        first = false
        try await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
      }
    }

    /// Writes `bytes` to `fd`, retrying short writes and interruptions.
    static func write(_ bytes: [UInt8], to fd: Int32) {
      bytes.withUnsafeBufferPointer { write($0, to: fd) }
    }

    /// Writes `bytes` to `fd`, retrying short writes and interruptions.
    static func write(_ bytes: UnsafeBufferPointer<UInt8>, to fd: Int32) {
      var offset = 0
      while offset < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        offset += n
      }
    }

    static func formatSeconds(_ seconds: Double) -> String {
      seconds == seconds.rounded() ? "\(Int(seconds))s" : oneDecimal(seconds) + "s"
    }

    /// `queue: 2 ahead, 1 behind origin (as of the last fetch; run 'git taskq sync')`, when a remote's queue
    /// was fetched before and differs.
    static func remoteLine(_ context: CommandContext) -> String? {
      let remote = GitTaskq.Sync.defaultRemote(context.settings)
      let sync = QueueSync.forRemote(store: context.store, gitDirectory: context.gitDirectory)
      guard let divergence = try? sync.divergence(remote: remote) else { return nil }
      let (ahead, behind) = divergence
      guard ahead > 0 || behind > 0 else { return nil }
      var parts: [String] = []
      if ahead > 0 { parts.append("\(ahead) ahead of") }
      if behind > 0 { parts.append("\(behind) behind") }
      return "queue: \(parts.joined(separator: ", ")) \(remote) (as of the last fetch; run 'git taskq sync')"
    }
  }
}
