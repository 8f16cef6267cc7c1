import ArgumentParser
import Foundation
import Git
import Orchestrator
import TaskQueue

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

    @Option(help: ArgumentHelp("Show only this task.", valueName: "ID"))
    var id: String?

    @Flag(help: "Print JSON (see docs/json.md).")
    var json = false

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
          guard let record = try snapshot.record(id) else { throw QueueError.notFound(id) }
          Console.printJSON(RecordJSON.object(record))
        } else {
          Console.printJSON(RecordJSON.array(try snapshot.records()))
        }
        return
      }
      let colored = ColorChoice.resolve(
        flag: noColor ? .never : color, configuration: try? context.repository.configuration(),
        isTerminal: Output.isTerminal(1))
      guard let watchValue else {
        let text = try screen(context, colored: colored, now: Timestamp.nowSeconds())
        Pager.print(text, configuration: try? context.repository.configuration())
        return
      }
      try await watch(context, every: watchValue < 0 ? Self.defaultWatchInterval : watchValue, colored: colored)
    }

    /// The text of one `status`: the remote line, then the groups (or why there are none).
    func screen(_ context: CommandContext, colored: Bool, now: Int) throws -> String {
      let snapshot = try context.store.snapshot()
      let view = StatusView(colored: colored, now: now)
      if let id {
        guard let record = try snapshot.record(id) else { throw QueueError.notFound(id) }
        // Its dependencies are looked up in the whole queue, as for the full view.
        var lookup: [String: TaskRecord] = [:]
        for dependency in record.dependsOn { lookup[dependency] = try snapshot.record(dependency) }
        return view.render([record], lookup: lookup)
      }
      let records = try snapshot.records()
      var lines: [String] = []
      if let line = Self.remoteLine(context) { lines.append(view.paint(line, .yellow)) }
      lines.append(records.isEmpty ? "no tasks (add one with 'git taskq add')" : view.render(records))
      return lines.joined(separator: "\n")
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
        do {
          body = try screen(context, colored: colored, now: now)
        } catch {
          // A frame that cannot be read (the task was removed, a writer holds the lock) says so and the
          // watch goes on: the next frame may succeed.
          let text = (error as? any LocalizedError)?.errorDescription ?? "\(error)"
          body = StatusView(colored: colored, now: now).paint("error: \(TerminalText.line(text))", .red)
        }
        let top = StatusView(colored: colored, now: now).paint("\(header)    \(clock)    (Ctrl-C to stop)", .dim)
        var lines = [top, ""] + body.components(separatedBy: "\n")
        if terminal {
          let size = TerminalSize.current()
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

    static func formatSeconds(_ seconds: Double) -> String {
      seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }

    /// `queue: 2 ahead, 1 behind origin (as of the last fetch; run 'git taskq sync')`, when a remote's queue
    /// was fetched before and differs.
    static func remoteLine(_ context: CommandContext) -> String? {
      let remote = GitTaskq.Sync.defaultRemote(context.settings)
      let sync = QueueSync(
        store: context.store, transport: GitCLITransport(gitDirectory: context.repository.gitDirectory))
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

/// git's `--color=<when>`.
enum ColorWhen: String, ExpressibleByArgument, CaseIterable {
  case auto, always, never
}

/// Whether to colour, decided the way git decides it.
enum ColorChoice {
  /// The value `Entrypoint` gives a bare `--color` (git: a bare `--color` means always).
  static let bareFlagValue = ColorWhen.always.rawValue

  /// Whether `status` colours its output.
  ///
  /// The first that applies wins: the flag; a non-empty `NO_COLOR` (never); `color.taskq`, then `color.ui`
  /// (from `git -c` first, then the repository's configuration); `auto`. `auto` colours when standard
  /// output is a terminal (or git's pager, `GIT_PAGER_IN_USE`) and `TERM` is not `dumb`.
  static func resolve(
    flag: ColorWhen?, configuration: Configuration?, isTerminal: Bool,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> Bool {
    let when =
      flag
      ?? ((environment["NO_COLOR"].map { !$0.isEmpty } ?? false) ? .never : nil)
      ?? configured(configuration, environment: environment)
      ?? .auto
    switch when {
    case .always: return true
    case .never: return false
    case .auto:
      let pager = environment["GIT_PAGER_IN_USE"].flatMap(parseBool) ?? false
      return (isTerminal || pager) && environment["TERM"] != "dumb"
    }
  }

  /// The colour setting of git's configuration: `color.taskq`, else `color.ui`.
  ///
  /// Each is read from `git -c` (GIT_CONFIG_PARAMETERS) before the configuration files, as git reads them.
  /// Unknown values are skipped.
  static func configured(_ configuration: Configuration?, environment: [String: String]) -> ColorWhen? {
    let parameters = environment["GIT_CONFIG_PARAMETERS"].map(parseConfigParameters) ?? []
    for key in ["color.taskq", "color.ui"] {
      if let given = parameters.last(where: { $0.key.lowercased() == key }) {
        if let when = colorBool(given.value) { return when }
      }
      if let value = (try? configuration?.string(key)) ?? nil, let when = colorBool(value) { return when }
    }
    return nil
  }

  /// git's `git_config_colorbool`: always, never, auto, or a boolean (true means auto); a key without a
  /// value is true.
  static func colorBool(_ value: String?) -> ColorWhen? {
    guard let value else { return .auto }
    switch value.lowercased() {
    case "always": return .always
    case "never": return .never
    case "auto": return .auto
    default: return parseBool(value).map { $0 ? .auto : .never }
    }
  }

  static func parseBool(_ value: String) -> Bool? {
    switch value.lowercased() {
    case "true", "yes", "on", "1", "": return true
    case "false", "no", "off", "0": return false
    default: return nil
    }
  }

  /// Parses `GIT_CONFIG_PARAMETERS`, which `git -c key=value` exports to the commands it runs: shell-quoted
  /// items separated by spaces, `'key'='value'` (git 2.31 and later), `'key=value'` (before) or `'key'`
  /// (no value).
  static func parseConfigParameters(_ text: String) -> [(key: String, value: String?)] {
    var items: [(key: String, value: String?)] = []
    var key = ""
    var value: String?
    var inItem = false
    var characters = Array(text)[...]
    func finish() {
      guard inItem else { return }
      if value == nil, let equals = key.firstIndex(of: "=") {
        // The old form quotes `key=value` as one word.
        value = String(key[key.index(after: equals)...])
        key = String(key[..<equals])
      }
      items.append((key, value))
      key = ""
      value = nil
      inItem = false
    }
    func append(_ character: Character) {
      inItem = true
      if value != nil { value?.append(character) } else { key.append(character) }
    }
    while let character = characters.popFirst() {
      switch character {
      case "'":
        inItem = true
        while let quoted = characters.popFirst(), quoted != "'" { append(quoted) }
      case "\\":
        if let escaped = characters.popFirst() { append(escaped) }
      case "=" where value == nil && inItem:
        value = ""
      case " ", "\t", "\n":
        finish()
      default:
        append(character)
      }
    }
    finish()
    return items
  }
}

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

/// The text of `status`: one group per status in lifecycle order, one line per task, in aligned columns:
/// id, time in status, `repo@base`, branch, attempt, port, then notes (priority, worker, stale lease,
/// dependencies, the first line of the latest error).
struct StatusView {
  /// SGR parameters of the colours used.
  enum Style: String {
    case bold = "1"
    case dim = "2"
    case red = "31"
    case green = "32"
    case yellow = "33"
    case blue = "34"
    case magenta = "35"
    case cyan = "36"
    case boldRed = "1;31"
    case boldGreen = "1;32"
    case boldYellow = "1;33"
    case boldCyan = "1;36"
    case boldBlue = "1;34"
  }

  /// A piece of a line and its colour.
  struct Span {
    var text: String
    var style: Style?
  }

  var colored: Bool
  var now: Int

  /// The colour of a status: its group header bold, its ids plain.
  static func style(of status: TaskStatus) -> Style {
    switch status {
    case .todo: .boldYellow
    case .planning, .building: .boldCyan
    case .review: .boldGreen
    case .failed: .boldRed
    case .done: .boldBlue
    case .cancelled: .dim
    }
  }

  func paint(_ text: String, _ style: Style?) -> String {
    guard colored, let style, !text.isEmpty else { return text }
    return "\u{1B}[\(style.rawValue)m\(text)\u{1B}[m"
  }

  /// The groups of `records`; dependencies are looked up among `records` and in `lookup` (which
  /// `status --id` fills with the shown task's dependencies).
  func render(_ records: [TaskRecord], lookup: [String: TaskRecord] = [:]) -> String {
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }).merging(lookup) { a, _ in a }
    let groups = TaskStatus.displayOrder.map { status in
      (status, Self.sortedForDisplay(records.filter { $0.status == status }))
    }.filter { !$0.1.isEmpty }
    // `lastPathComponent` once per repository, not once per task.
    var repoNames: [String: String] = [:]
    for repo in Set(records.map(\.repo)) { repoNames[repo] = (repo as NSString).lastPathComponent }
    let rows = groups.flatMap(\.1).map { row(for: $0, byID: byID, repoName: repoNames[$0.repo] ?? $0.repo) }
    // Column widths over the whole screen, so every group lines up; a column empty everywhere takes no room.
    let columnCount = rows.map(\.columns.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columnCount)
    for row in rows {
      for (index, cell) in row.columns.enumerated() { widths[index] = max(widths[index], Self.width(cell.text)) }
    }
    widths[0] = min(widths[0], 24)
    var lines: [String] = []
    var index = 0
    for (status, group) in groups {
      lines.append(paint("\(status.rawValue) (\(group.count))", Self.style(of: status)))
      for _ in group {
        let row = rows[index]
        index += 1
        var spans: [Span] = []
        for (column, cell) in row.columns.enumerated() where widths[column] > 0 {
          let padding = String(repeating: " ", count: max(0, widths[column] - Self.width(cell.text)))
          spans.append(cell)
          spans.append(Span(text: padding + "  ", style: nil))
        }
        for note in row.notes {
          spans.append(note)
          spans.append(Span(text: "  ", style: nil))
        }
        lines.append("  " + join(spans))
      }
    }
    return lines.joined(separator: "\n")
  }

  /// Spans as text, without trailing blanks.
  private func join(_ spans: [Span]) -> String {
    var spans = spans
    while let last = spans.last, last.style == nil {
      var bytes = Array(last.text.utf8)
      while bytes.last == UInt8(ascii: " ") { bytes.removeLast() }
      let trimmed = String(decoding: bytes, as: UTF8.self)
      if trimmed.isEmpty {
        spans.removeLast()
      } else {
        spans[spans.count - 1].text = trimmed
        break
      }
    }
    return spans.map { paint($0.text, $0.style) }.joined()
  }

  static func sortedForDisplay(_ group: [TaskRecord]) -> [TaskRecord] {
    group.sorted { ($0.priority, -$0.seq) > ($1.priority, -$1.seq) }
  }

  /// The cells of one task: fixed columns, then free-form notes.
  /// The width of a cell in columns: its UTF-8 length when it is ASCII (ids, ages, branches nearly always
  /// are), which is much cheaper than counting grapheme clusters; else its characters.
  static func width(_ text: String) -> Int {
    let utf8 = text.utf8
    return utf8.allSatisfy { $0 < 0x80 } ? utf8.count : text.count
  }

  func row(for r: TaskRecord, byID: [String: TaskRecord], repoName: String) -> (columns: [Span], notes: [Span]) {
    let since = Timestamp.parse(r.statusChangedAt ?? r.updatedAt) ?? now
    let ran = Self.hasRun(r)
    // Everything from the record is shown with its control characters made visible: records come from
    // other machines.
    let columns = [
      Span(text: TerminalText.line(r.id), style: .bold),
      Span(text: Timestamp.age(now - since), style: nil),
      Span(text: TerminalText.line(repoName + "@" + r.base), style: nil),
      Span(text: TerminalText.line(r.branch), style: r.status == .review ? .green : nil),
      Span(text: ran ? "attempt \(r.attempt + 1)" : "", style: nil),
      Span(text: r.port.map { "port \($0)" } ?? "", style: nil),
    ]
    var notes: [Span] = []
    if r.priority != 0 { notes.append(Span(text: "priority \(r.priority)", style: .magenta)) }
    if let worker = r.worker, r.status.isActive {
      notes.append(Span(text: "worker \(TerminalText.line(worker))", style: .dim))
    }
    if r.isStale(now: now) { notes.append(Span(text: "STALE: lease expired (git taskq recover)", style: .boldRed)) }
    if r.status == .todo {
      let dependencies = DependencySummary(of: r) { byID[$0] }
      if let text = dependencies.text {
        notes.append(Span(text: TerminalText.line(text), style: dependencies.blocking.isEmpty ? .yellow : .red))
      }
    }
    if r.status == .failed, let error = Self.firstLine(r.lastError) {
      notes.append(Span(text: "error: \(error)", style: .red))
    }
    return (columns, notes)
  }

  /// Whether `r` ran at least once, so that its attempt is worth showing. A cancelled task ran when it
  /// has a worktree or a container.
  static func hasRun(_ r: TaskRecord) -> Bool {
    r.attempt > 0 || r.status.isActive || [.review, .failed, .done].contains(r.status)
      || (r.status == .cancelled && (r.worktreePath != nil || r.container != nil))
  }

  /// The attempt as every text output shows it: which run this is, counted from 1 (`attempt` in the
  /// record and the JSON counts retries, from 0, as the Python taskq did).
  static func attemptText(_ r: TaskRecord) -> String {
    hasRun(r) ? "\(r.attempt + 1)" : "\(r.attempt + 1) (not run yet)"
  }

  /// The first non-empty line of `text`, with control characters made visible.
  static func firstLine(_ text: String?) -> String? {
    guard let text else { return nil }
    let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
      .first { !$0.isEmpty }
    return line.map { TerminalText.line(String($0)) }
  }

  /// `line` cut to `width` visible characters (escape sequences kept, and colour reset when cut).
  static func truncate(_ line: String, toWidth width: Int) -> String {
    guard width > 0 else { return line }
    var visible = 0
    var out = ""
    var inEscape = false
    var cut = false
    for character in line {
      if inEscape {
        out.append(character)
        if character.isLetter { inEscape = false }
        continue
      }
      if character == "\u{1B}" {
        inEscape = true
        out.append(character)
        continue
      }
      if visible == width {
        cut = true
        break
      }
      out.append(character)
      visible += 1
    }
    return cut && line.contains("\u{1B}") ? out + "\u{1B}[m" : out
  }
}
