import ArgumentParser
import Git
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
        if let hint = ShareHint.once(repository: context.repository, remote: Sync.defaultRemote(context.settings)) {
          Console.error(hint)
        }
        let width = Output.isTerminal(1) ? TerminalSize.current().columns : nil
        let text = try screen(
          context, colored: colored, now: Timestamp.nowSeconds(), layout: StatusView.Layout(width: width, all: all))
        Pager.print(text, configuration: try? context.repository.configuration())
        return
      }
      try await watch(context, every: watchValue < 0 ? Self.defaultWatchInterval : watchValue, colored: colored)
    }

    /// The text of one `status`: the remote line, then the groups (or why there are none).
    func screen(_ context: CommandContext, colored: Bool, now: Int, layout: StatusView.Layout) throws -> String {
      let snapshot = try context.store.snapshot()
      var view = StatusView(colored: colored, now: now)
      view.queueRepository = context.repository.mainWorkingDirectory
      // The title of a task: the first line of its task file's body, read only for the rows shown.
      let title: (String) -> String? = { id in (try? snapshot.taskFile(id)).flatMap { $0 }.flatMap(StatusView.title) }
      if let id {
        guard let record = try snapshot.record(id) else { throw QueueError.notFound(id) }
        // Its dependencies are looked up in the whole queue, as for the full view.
        var lookup: [String: TaskRecord] = [:]
        for dependency in record.dependsOn { lookup[dependency] = try snapshot.record(dependency) }
        return view.render([record], lookup: lookup, layout: layout, title: title)
      }
      let records = try snapshot.records()
      var lines: [String] = []
      var layout = layout
      if let line = Self.remoteLine(context) {
        lines.append(StatusView.fit(view.paint(line, .yellow), to: layout.width))
        layout.rows = layout.rows.map { $0 - 1 }
      }
      lines.append(
        records.isEmpty
          ? "no tasks (add one with 'git taskq add')" : view.render(records, layout: layout, title: title))
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
        let size = terminal ? TerminalSize.current() : nil
        do {
          // The header and its blank line take two rows (and one is kept free, as watch(1) does); long groups collapse to fit the rest.
          body = try screen(
            context, colored: colored, now: now,
            layout: StatusView.Layout(width: size?.columns, rows: size.map { $0.rows - 3 }, all: all))
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

    static func formatSeconds(_ seconds: Double) -> String {
      seconds == seconds.rounded() ? "\(Int(seconds))s" : oneDecimal(seconds) + "s"
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
  /// The queue repository's top-level directory, to name tasks whose `repo` is `.` (this repository).
  var queueRepository = ""

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

  /// How much of the queue a screen shows.
  struct Layout {
    /// The terminal's width: every line is cut to it (with `…`); `nil` (a pipe) keeps lines whole.
    var width: Int?
    /// The rows a `--watch` frame has for the groups: long groups are collapsed to fit.
    var rows: Int?
    /// `--all`: no group is collapsed (except to fit `rows`).
    var all = false
    /// The width from which a terminal shows the repo@base and branch columns.
    static let wideColumns = 120
    /// How many of the most recent done and cancelled tasks a screen shows without `--all`.
    static let finishedShown = 5
    /// How many tasks any other group shows without `--all` (the first in claim order): a queue of
    /// thousands stays readable, and `status` reads the titles of a bounded number of tasks.
    static let groupShown = 50
  }

  /// The groups of `records`; dependencies are looked up among `records` and in `lookup` (which
  /// `status --id` fills with the shown task's dependencies); `title` gives the first line of a task.
  func render(
    _ records: [TaskRecord], lookup: [String: TaskRecord] = [:], layout: Layout = Layout(),
    title: (String) -> String? = { _ in nil }
  ) -> String {
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }).merging(lookup) { a, _ in a }
    let allGroups = TaskStatus.displayOrder.map { status in
      (status, Self.sortedForDisplay(records.filter { $0.status == status }, status: status))
    }.filter { !$0.1.isEmpty }
    let shown = Self.collapse(allGroups, layout: layout)
    // `lastPathComponent` once per repository, not once per task.
    var repoNames: [String: String] = [:]
    for repo in Set(records.map(\.repo)) {
      repoNames[repo] = RepositoryReference(stored: repo).label(queueRepository: queueRepository)
    }
    let rows = shown.flatMap(\.tasks).map {
      row(for: $0, byID: byID, repoName: repoNames[$0.repo] ?? $0.repo, title: title($0.id))
    }
    // Column widths over the whole screen, so every group lines up; a column empty everywhere takes no room.
    let columnCount = rows.map(\.columns.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columnCount)
    for row in rows {
      for (index, cell) in row.columns.enumerated() { widths[index] = max(widths[index], Self.width(cell.text)) }
    }
    // The title is the last column: it takes what the others leave (at most 60 characters), and on a
    // terminal each row's title is cut further so that the row's notes fit.
    let titleColumn = Self.titleColumn
    var fixed = 2
    if columnCount > titleColumn {
      if let width = layout.width {
        // On a terminal, long ids, repositories and branches are cut so that the title keeps its room;
        // below ``Layout/wideColumns`` columns, repo@base and branch are left out (`show` has them).
        let wide = width >= Layout.wideColumns
        widths[0] = min(widths[0], 16)
        widths[2] = wide ? min(widths[2], 24) : 0
        widths[3] = wide ? min(widths[3], 32) : 0
      }
      fixed = widths.enumerated().filter { $0.offset != titleColumn && $0.element > 0 }.map { $0.element + 2 }
        .reduce(2, +)
      widths[titleColumn] = min(widths[titleColumn], 60)
      if let width = layout.width { widths[titleColumn] = min(widths[titleColumn], max(10, width - fixed - 2)) }
    }
    var lines: [String] = []
    var index = 0
    for group in shown {
      lines.append(paint("\(group.status.rawValue) (\(group.total))", Self.style(of: group.status)))
      for _ in group.tasks {
        let row = rows[index]
        index += 1
        var spans: [Span] = []
        let notes = row.notes.map { Self.width($0.text) + 2 }.reduce(0, +)
        for (column, cell) in row.columns.enumerated() where widths[column] > 0 {
          var cell = cell
          var columnWidth = widths[column]
          if column == titleColumn, let width = layout.width, notes > 0 {
            columnWidth = min(columnWidth, max(10, width - fixed - notes))
          }
          cell.text = Self.cut(cell.text, to: columnWidth)
          let padding = String(repeating: " ", count: max(0, columnWidth - Self.width(cell.text)))
          spans.append(cell)
          spans.append(Span(text: padding + "  ", style: nil))
        }
        for note in row.notes {
          spans.append(note)
          spans.append(Span(text: "  ", style: nil))
        }
        lines.append(Self.fit("  " + join(spans), to: layout.width))
      }
      if group.total > group.tasks.count {
        let more = group.total - group.tasks.count
        let hint = layout.all || layout.rows != nil ? "" : " (git taskq status --all)"
        lines.append(Self.fit(paint("  … \(more) more \(group.status.rawValue)\(hint)", .dim), to: layout.width))
      }
    }
    return lines.joined(separator: "\n")
  }

  /// A group as shown: its tasks on screen and how many it has.
  struct ShownGroup {
    var status: TaskStatus
    var tasks: [TaskRecord]
    var total: Int
  }

  /// The tasks each group shows. Without `--all`, done and cancelled show their most recent
  /// ``Layout/finishedShown``; with `rows` (a `--watch` frame), groups are cut to fit the screen, the
  /// running, review and failed groups first, then todo, then the finished ones, each keeping at least
  /// one row and saying how many more it has (`… 52 more todo`).
  static func collapse(_ groups: [(TaskStatus, [TaskRecord])], layout: Layout) -> [ShownGroup] {
    var shown = groups.map { ShownGroup(status: $0.0, tasks: $0.1, total: $0.1.count) }
    if !layout.all {
      for index in shown.indices {
        let limit = shown[index].status.isTerminal ? Layout.finishedShown : Layout.groupShown
        if shown[index].total > limit { shown[index].tasks = Array(shown[index].tasks.prefix(limit)) }
      }
    }
    guard let rows = layout.rows else { return shown }
    // Each group's header; then one row each, so no group disappears, and a line for "… N more"
    // wherever rows are left out.
    var budget = rows - shown.count
    var allowed: [TaskStatus: Int] = [:]
    for group in shown {
      let one = min(group.tasks.count, 1)
      allowed[group.status] = one
      budget -= one + (group.total > one ? 1 : 0)
    }
    let order: [TaskStatus] = [.planning, .building, .review, .failed, .todo, .done, .cancelled]
    for status in order {
      guard let group = shown.first(where: { $0.status == status }) else { continue }
      let wanted = group.tasks.count - (allowed[status] ?? 0)
      guard wanted > 0 else { continue }
      // Showing every row of a group frees the line its "… N more" had.
      let freed = group.tasks.count == group.total ? 1 : 0
      if wanted <= budget + freed {
        allowed[status, default: 0] += wanted
        budget -= wanted - freed
      } else if budget > 0 {
        allowed[status, default: 0] += budget
        budget = 0
      }
    }
    for index in shown.indices {
      let limit = allowed[shown[index].status] ?? shown[index].tasks.count
      shown[index].tasks = Array(shown[index].tasks.prefix(limit))
    }
    return shown
  }

  /// `text` cut to `width` columns, ending in `…` when cut.
  static func cut(_ text: String, to width: Int) -> String {
    guard Self.width(text) > width else { return text }
    guard width > 1 else { return String(text.prefix(width)) }
    return String(text.prefix(width - 1)) + "…"
  }

  /// A painted line cut to `width` visible columns with `…` (never wrapped); unchanged without a width.
  static func fit(_ line: String, to width: Int?) -> String {
    guard let width, width > 1 else { return line }
    var visible = 0
    var inEscape = false
    for character in line {
      if inEscape {
        if character.isLetter { inEscape = false }
      } else if character == "\u{1B}" {
        inEscape = true
      } else {
        visible += 1
      }
    }
    guard visible > width else { return line }
    let cut = truncate(line, toWidth: width - 1)
    return cut.hasSuffix("\u{1B}[m") ? String(cut.dropLast(3)) + "…\u{1B}[m" : cut + "…"
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

  /// The order within a group: highest priority, then first added; done and cancelled tasks most recent
  /// first (the ones a collapsed group keeps).
  static func sortedForDisplay(_ group: [TaskRecord], status: TaskStatus? = nil) -> [TaskRecord] {
    if let status, status.isTerminal {
      return group.sorted {
        (Timestamp.parse($0.statusChangedAt ?? $0.updatedAt) ?? 0, $0.seq)
          > (Timestamp.parse($1.statusChangedAt ?? $1.updatedAt) ?? 0, $1.seq)
      }
    }
    return group.sorted { ($0.priority, -$0.seq) > ($1.priority, -$1.seq) }
  }

  /// The cells of one task: fixed columns, then free-form notes.
  /// The width of a cell in columns: its UTF-8 length when it is ASCII (ids, ages, branches nearly always
  /// are), which is much cheaper than counting grapheme clusters; else its characters.
  static func width(_ text: String) -> Int {
    let utf8 = text.utf8
    return utf8.allSatisfy { $0 < 0x80 } ? utf8.count : text.count
  }

  func row(for r: TaskRecord, byID: [String: TaskRecord], repoName: String, title: String? = nil)
    -> (columns: [Span], notes: [Span])
  {
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
      Span(text: title.map { TerminalText.line($0) } ?? "", style: nil),
    ]
    // The notes, most telling first: a cut line loses the last ones.
    var notes: [Span] = []
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
    if let worker = r.worker, r.status.isActive {
      notes.append(Span(text: "worker \(TerminalText.line(worker))", style: .dim))
    }
    if r.priority != 0 { notes.append(Span(text: "priority \(r.priority)", style: .magenta)) }
    return (columns, notes)
  }

  /// The title of a task file: the first non-empty line of its body (after the frontmatter), without a
  /// heading's `#`.
  static func title(ofTaskFile text: String) -> String? {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
    if lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") { lines = lines[(end + 1)...] }
    guard let line = lines.first(where: { !$0.trimmingSpaces().isEmpty }) else { return nil }
    return line.drop { $0 == "#" }.trimmingSpaces()
  }

  /// The index of the title among a row's columns: id, age, repo@base, branch, attempt, port, title.
  static let titleColumn = 6

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
    let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }
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
