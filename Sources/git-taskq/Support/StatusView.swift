import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The text of `status`: one group per status in lifecycle order, one line per task, in aligned columns:
/// id, time in status, `repo@base`, branch, attempt, port, then notes (priority, worker, stale lease,
/// dependencies, the first line of the latest error).
///
/// The view is drawn into one byte buffer. Records are grouped and sorted as indices into the record
/// list, each task's timestamp is parsed once, dependencies and repository names are looked up only for
/// the rows shown, and a cell is text of the record itself (or a number) written straight into the buffer:
/// at 10,000 tasks a full listing costs a few milliseconds (`docs/performance.md`). Text that is not
/// printable ASCII (other scripts, control characters from a hostile record) takes the slower path through
/// `String`, ``TerminalText`` and grapheme counting, with the same result.
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

  /// The groups of `records` as text (see ``render(_:lookup:layout:into:)``).
  func render(
    _ records: [TaskRecord], lookup: [String: TaskRecord] = [:], layout: Layout = Layout(),
    title: @escaping (String) -> String? = { _ in nil }
  ) throws -> String {
    var buffer: [UInt8] = []
    try render(QueueListing(records: records, title: title), lookup: lookup, layout: layout, into: &buffer)
    return String(decoding: buffer, as: UTF8.self)
  }

  /// Appends the groups of `tasks` to `buffer`, lines separated by newlines (no newline after the last).
  ///
  /// Groups and their order come from the listing's few fields; the records (and titles, from the task
  /// files) of the rows shown only are decoded. Dependencies are looked up among `tasks` and in `lookup`
  /// (which `status --id` fills with the shown task's dependencies).
  func render(
    _ tasks: QueueListing, lookup: [String: TaskRecord] = [:], layout: Layout = Layout(),
    into buffer: inout [UInt8]
  ) throws {
    let shown = Self.collapse(groups(tasks), layout: layout)
    var lookups = Lookups(tasks: tasks, extra: lookup, queueRepository: queueRepository)
    // Every row's cells in one array (``Row/columnCount`` a row) and the notes in another, rather than
    // two arrays per row: 10,000 rows were 20,000 allocations.
    let rowCount = shown.reduce(0) { $0 + $1.tasks.count }
    var rows = Rows()
    rows.cells.reserveCapacity(rowCount * Row.columnCount)
    rows.noteEnds.reserveCapacity(rowCount)
    // Only what a line shows of each record (from the cache: no full record is decoded).
    let reader = tasks.rowReader()
    for group in shown {
      for index in group.tasks {
        appendRow(
          for: try reader.row(index), since: tasks.since(index), lookups: &lookups, title: tasks.title(index),
          to: &rows)
      }
    }
    // Column widths over the whole screen, so every group lines up; a column empty everywhere takes no room.
    let columnCount = rowCount == 0 ? 0 : Row.columnCount
    var widths = [Int](repeating: 0, count: columnCount)
    for row in 0..<rowCount {
      for column in 0..<columnCount {
        widths[column] = max(widths[column], rows.cells[row * Row.columnCount + column].width)
      }
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
    buffer.reserveCapacity(buffer.count + rowCount * (widths.reduce(8, +) + 24))
    var writer = LineWriter(colored: colored)
    var index = 0
    var first = true
    for group in shown {
      if !first { buffer.append(newline) }
      first = false
      writer.header(group.status.rawValue, count: group.total, style: Self.style(of: group.status), into: &buffer)
      for _ in group.tasks {
        let row = index
        index += 1
        let rowNotes = (row == 0 ? 0 : rows.noteEnds[row - 1])..<rows.noteEnds[row]
        buffer.append(newline)
        let start = buffer.count
        writer.begin(at: start)
        writer.plain("  ", into: &buffer)
        let notes = rows.notes[rowNotes].reduce(0) { $0 + $1.width + 2 }
        for column in 0..<columnCount where widths[column] > 0 {
          var columnWidth = widths[column]
          if column == titleColumn, let width = layout.width, notes > 0 {
            columnWidth = min(columnWidth, max(10, width - fixed - notes))
          }
          writer.cell(rows.cells[row * Row.columnCount + column], width: columnWidth, into: &buffer)
        }
        for note in rows.notes[rowNotes] {
          writer.cell(note, width: nil, into: &buffer)
          writer.plain("  ", into: &buffer)
        }
        writer.end(into: &buffer)
        Self.fit(&buffer, from: start, to: layout.width)
      }
      if group.total > group.tasks.count {
        let more = group.total - group.tasks.count
        let hint = layout.all || layout.rows != nil ? "" : " (git taskq status --all)"
        buffer.append(newline)
        let start = buffer.count
        buffer.append(contentsOf: paint("  … \(more) more \(group.status.rawValue)\(hint)", .dim).utf8)
        Self.fit(&buffer, from: start, to: layout.width)
      }
    }
  }

  private var newline: UInt8 { UInt8(ascii: "\n") }

  /// The task positions of each non-empty status group, in lifecycle order, each in display order.
  func groups(_ tasks: QueueListing) -> [(TaskStatus, [Int])] {
    var byStatus = [[Int]](repeating: [], count: TaskStatus.displayOrder.count)
    // A scan of the seven statuses: a dictionary would hash each status's raw string, 100,000 times.
    let order = TaskStatus.displayOrder
    for index in 0..<tasks.count {
      let status = tasks.status(index)
      if let position = order.firstIndex(where: { $0 == status }) { byStatus[position].append(index) }
    }
    return TaskStatus.displayOrder.enumerated().compactMap { position, status in
      let members = byStatus[position]
      guard !members.isEmpty else { return nil }
      return (status, Self.sortedForDisplay(members, of: tasks, status: status))
    }
  }

  /// A group as shown: its tasks on screen (indices into the records) and how many it has.
  struct ShownGroup {
    var status: TaskStatus
    var tasks: [Int]
    var total: Int
  }

  /// The tasks each group shows. Without `--all`, done and cancelled show their most recent
  /// ``Layout/finishedShown``; with `rows` (a `--watch` frame), groups are cut to fit the screen, the
  /// running, review and failed groups first, then todo, then the finished ones, each keeping at least
  /// one row and saying how many more it has (`… 52 more todo`).
  static func collapse(_ groups: [(TaskStatus, [Int])], layout: Layout) -> [ShownGroup] {
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

  /// The order within a group: highest priority, then first added; done and cancelled tasks most recent
  /// first (the ones a collapsed group keeps). Sorts indices into `records`; each timestamp is parsed once.
  static func sortedForDisplay(_ group: [Int], of tasks: QueueListing, status: TaskStatus) -> [Int] {
    if status.isTerminal {
      let keys = group.map { index in (since: tasks.since(index) ?? 0, seq: tasks.seq(index)) }
      let order = keys.indices.sorted { keys[$0] > keys[$1] }
      return order.map { group[$0] }
    }
    let keys = group.map { index in (tasks.priority(index), -tasks.seq(index)) }
    return keys.indices.sorted { keys[$0] > keys[$1] }.map { group[$0] }
  }

  // MARK: Rows

  /// The index of the title among a row's columns: id, age, repo@base, branch, attempt, port, title.
  static let titleColumn = 6

  /// The cells of many rows: ``Row/columnCount`` cells a row, and the notes of row `i` ending at
  /// `noteEnds[i]`.
  struct Rows {
    var cells: [Cell] = []
    var notes: [Cell] = []
    var noteEnds: [Int] = []
  }

  /// The cells of one task: the fixed columns, then free-form notes.
  struct Row {
    static let columnCount = 7
    var cells: [Cell]
    var notes: [Cell]
  }

  /// What `row(for:lookups:title:)` needs of the whole queue, computed for the rows shown only.
  struct Lookups {
    let tasks: QueueListing
    let extra: [String: TaskRecord]
    let queueRepository: String
    private var byID: [String: Int]?
    private var repoNames: [String: String] = [:]

    init(tasks: QueueListing, extra: [String: TaskRecord], queueRepository: String) {
      self.tasks = tasks
      self.extra = extra
      self.queueRepository = queueRepository
    }

    /// A record by id, among the tasks first (the first of equal ids), then in `extra`.
    mutating func record(_ id: String) -> TaskRecord? {
      if byID == nil {
        var map: [String: Int] = [:]
        map.reserveCapacity(tasks.count)
        for index in 0..<tasks.count where map[tasks.id(index)] == nil { map[tasks.id(index)] = index }
        byID = map
      }
      if let index = byID?[id] { return try? tasks.record(index) }
      return extra[id]
    }

    /// The label of a repository (`lastPathComponent` once per repository, not once per task).
    mutating func repoName(_ repo: String) -> String {
      if let name = repoNames[repo] { return name }
      let name = RepositoryReference(stored: repo).label(queueRepository: queueRepository)
      repoNames[repo] = name
      return name
    }
  }

  /// The cells of `r`'s line; `since` is the listing's status timestamp of the task.
  func row(for r: ListingRow, since: Int?, lookups: inout Lookups, title: String?) -> Row {
    var rows = Rows()
    appendRow(for: r, since: since, lookups: &lookups, title: title, to: &rows)
    return Row(cells: rows.cells, notes: rows.notes)
  }

  /// Appends the cells and notes of `r`'s line to `rows` (see ``row(for:since:lookups:title:)``).
  func appendRow(for r: ListingRow, since: Int?, lookups: inout Lookups, title: String?, to rows: inout Rows) {
    let since = since ?? now
    let ran = r.hasRun
    // Everything from the record is shown with its control characters made visible: records come from
    // other machines (``Cell/init(_:style:)`` escapes).
    rows.cells.append(Cell(r.id, style: .bold))
    rows.cells.append(Cell(age: now - since))
    rows.cells.append(Cell(joining: lookups.repoName(r.repo), "@", r.base))
    rows.cells.append(Cell(r.branch, style: r.status == .review ? .green : nil))
    rows.cells.append(ran ? Cell(prefix: "attempt ", number: r.attempt + 1) : Cell.empty)
    rows.cells.append(r.port.map { Cell(prefix: "port ", number: $0) } ?? Cell.empty)
    rows.cells.append(title.map { Cell($0) } ?? Cell.empty)
    // The notes, most telling first: a cut line loses the last ones.
    defer { rows.noteEnds.append(rows.notes.count) }
    if r.isStale(now: now) {
      rows.notes.append(Cell(safe: "STALE: lease expired (git taskq recover)", style: .boldRed))
    }
    if r.status == .todo, !r.dependsOn.isEmpty {
      // The summary reads only the task's dependencies (and each dependency's status).
      let task = TaskRecord(
        id: r.id, repo: r.repo, base: r.base, branch: r.branch, taskFile: "", createdAt: "", seq: 0,
        dependsOn: r.dependsOn)
      let dependencies = DependencySummary(of: task) { lookups.record($0) }
      if let text = dependencies.text {
        rows.notes.append(Cell(text, style: dependencies.blocking.isEmpty ? .yellow : .red))
      }
    }
    if r.status == .failed, let error = Self.firstLine(r.lastError) {
      rows.notes.append(Cell(safe: "error: \(error)", style: .red))
    }
    if let worker = r.worker, r.status.isActive {
      rows.notes.append(Cell(safe: "worker \(TerminalText.line(worker))", style: .dim))
    }
    if r.priority != 0 { rows.notes.append(Cell(prefix: "priority ", number: r.priority, style: .magenta)) }
  }

  /// The title of a task file (see ``TaskTitle/of(taskFile:)``).
  static func title(ofTaskFile text: String) -> String? { TaskTitle.of(taskFile: text) }

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
    let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }.first { !$0.isEmpty }
    return line.map { TerminalText.line(String($0)) }
  }

  // MARK: Cutting lines to a width

  /// The width of a cell in columns: its UTF-8 length when it is ASCII (ids, ages, branches nearly always
  /// are), which is much cheaper than counting grapheme clusters; else its characters.
  static func width(_ text: String) -> Int {
    let utf8 = text.utf8
    return utf8.allSatisfy { $0 < 0x80 } ? utf8.count : text.count
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

  /// The line that starts at `start` in `buffer` (and runs to its end) cut to `width` as ``fit(_:to:)``
  /// cuts it: on the bytes when the line is ASCII, through `String` otherwise.
  static func fit(_ buffer: inout [UInt8], from start: Int, to width: Int?) {
    guard let width, width > 1 else { return }
    var visible = 0
    var inEscape = false
    var ascii = true
    var hasEscape = false
    var cutAt = -1
    for position in start..<buffer.count {
      let byte = buffer[position]
      if byte >= 0x80 {
        ascii = false
        break
      }
      if inEscape {
        if isASCIILetter(byte) { inEscape = false }
      } else if byte == 0x1B {
        inEscape = true
        hasEscape = true
      } else {
        // The first visible character past `width - 1` is where a cut line ends.
        if visible == width - 1 && cutAt < 0 { cutAt = position }
        visible += 1
      }
    }
    guard ascii else {
      let line = String(decoding: buffer[start...], as: UTF8.self)
      let fitted = fit(line, to: width)
      buffer.removeSubrange(start...)
      buffer.append(contentsOf: fitted.utf8)
      return
    }
    guard visible > width else { return }
    buffer.removeSubrange(cutAt...)
    buffer.append(contentsOf: [0xE2, 0x80, 0xA6])  // …
    if hasEscape { buffer.append(contentsOf: [0x1B, UInt8(ascii: "["), UInt8(ascii: "m")]) }
  }

  private static func isASCIILetter(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
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

extension StatusView {
  /// One cell of a row: text of the record (escaped when it is not printable ASCII), or a number drawn
  /// straight into the buffer, with its width in columns.
  struct Cell {
    enum Content {
      case text(String)
      case pair(String, String)
      case age(Int)
      case number(StaticString, Int)
    }
    var content: Content
    var width: Int
    /// Every byte is printable ASCII: cutting works on bytes and the width is the byte count.
    var ascii: Bool
    var style: Style?

    static let empty = Cell(content: .text(""), width: 0, ascii: true, style: nil)

    private init(content: Content, width: Int, ascii: Bool, style: Style?) {
      self.content = content
      self.width = width
      self.ascii = ascii
      self.style = style
    }

    /// Text from a record: its control characters are made visible (``TerminalText/line(_:)``).
    init(_ text: String, style: Style? = nil) {
      if let count = Self.printableASCIICount(text) {
        self.init(content: .text(text), width: count, ascii: true, style: style)
      } else {
        self.init(safe: TerminalText.line(text), style: style)
      }
    }

    /// Text that is safe already (made of escaped parts and our own words).
    init(safe text: String, style: Style?) {
      let ascii = Self.printableASCIICount(text)
      self.init(content: .text(text), width: ascii ?? StatusView.width(text), ascii: ascii != nil, style: style)
    }

    /// `a` + `separator` + `b`, from a record, as one cell.
    init(joining a: String, _ separator: String, _ b: String) {
      if let left = Self.printableASCIICount(a), let right = Self.printableASCIICount(b),
        let middle = Self.printableASCIICount(separator)
      {
        self.init(content: .pair(a + separator, b), width: left + middle + right, ascii: true, style: nil)
      } else {
        self.init(a + separator + b)
      }
    }

    /// A short age, as ``Timestamp/age(_:)`` writes it: `3s`, `5m`, `2h`, `4d`.
    init(age seconds: Int) {
      let value = Self.ageValue(seconds)
      self.init(content: .age(seconds), width: Self.decimalWidth(value) + 1, ascii: true, style: nil)
    }

    /// `prefix` followed by `number` in decimal (`attempt 2`, `port 4123`, `priority -1`).
    init(prefix: StaticString, number: Int, style: Style? = nil) {
      self.init(
        content: .number(prefix, number), width: prefix.utf8CodeUnitCount + Self.decimalWidth(number), ascii: true,
        style: style)
    }

    static func ageValue(_ seconds: Int) -> Int {
      let s = max(0, seconds)
      return s < 60 ? s : s < 3600 ? s / 60 : s < 86400 ? s / 3600 : s / 86400
    }

    static func ageUnit(_ seconds: Int) -> UInt8 {
      let s = max(0, seconds)
      return UInt8(ascii: s < 60 ? "s" : s < 3600 ? "m" : s < 86400 ? "h" : "d")
    }

    static func decimalWidth(_ number: Int) -> Int {
      var n = number.magnitude
      var digits = 1
      while n >= 10 {
        n /= 10
        digits += 1
      }
      return digits + (number < 0 ? 1 : 0)
    }

    /// The byte count of `text` when every byte is printable ASCII (no control character), else `nil`.
    static func printableASCIICount(_ text: String) -> Int? {
      let utf8 = text.utf8
      if let count = utf8.withContiguousStorageIfAvailable({ bytes -> Int? in
        for byte in bytes where byte < 0x20 || byte > 0x7E { return nil }
        return bytes.count
      }) {
        return count
      }
      for byte in utf8 where byte < 0x20 || byte > 0x7E { return nil }
      return utf8.count
    }

    /// The cell's text as a `String` (for the rare cell that is not ASCII, and for tests).
    var text: String {
      switch content {
      case .text(let text): text
      case .pair(let a, let b): a + b
      case .age(let seconds): Timestamp.age(seconds)
      case .number(let prefix, let number): "\(prefix)\(number)"
      }
    }

    /// Appends the cell's bytes, at most `limit` of them.
    func write(into buffer: inout [UInt8], limit: Int = .max) {
      var left = limit
      func bytes(_ text: String) {
        guard left > 0 else { return }
        let utf8 = text.utf8
        let count = utf8.count
        if count <= left {
          if utf8.withContiguousStorageIfAvailable({ buffer.append(contentsOf: $0) }) == nil {
            buffer.append(contentsOf: utf8)
          }
          left -= count
        } else {
          buffer.append(contentsOf: utf8.prefix(left))
          left = 0
        }
      }
      switch content {
      case .text(let text): bytes(text)
      case .pair(let a, let b):
        bytes(a)
        bytes(b)
      case .age(let seconds):
        // Written in place, then cut to the limit: no array per cell.
        let start = buffer.count
        StatusView.appendDecimal(Self.ageValue(seconds), into: &buffer)
        buffer.append(Self.ageUnit(seconds))
        if buffer.count - start > left { buffer.removeSubrange((start + max(0, left))...) }
      case .number(let prefix, let number):
        let start = buffer.count
        prefix.withUTF8Buffer { buffer.append(contentsOf: $0) }
        StatusView.appendDecimal(number, into: &buffer)
        if buffer.count - start > left { buffer.removeSubrange((start + max(0, left))...) }
      }
    }
  }

  static func appendDecimal(_ number: Int, into buffer: inout [UInt8]) {
    if number < 0 { buffer.append(UInt8(ascii: "-")) }
    var n = number.magnitude
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    withUnsafeMutableBytes(of: &digits) { raw in
      repeat {
        if count < raw.count {
          raw[count] = UInt8(ascii: "0") + UInt8(n % 10)
          count += 1
        }
        n /= 10
      } while n > 0
      for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
    }
  }

  /// Writes the lines of the view: cells painted, padded and cut; each line without trailing blanks.
  struct LineWriter {
    let colored: Bool
    /// Where the line ends once its trailing blanks are gone: after the last styled cell or the last
    /// non-blank byte of plain text.
    private var keep = 0

    init(colored: Bool) { self.colored = colored }

    mutating func begin(at position: Int) { keep = position }

    mutating func end(into buffer: inout [UInt8]) {
      if keep < buffer.count { buffer.removeSubrange(keep...) }
    }

    mutating func plain(_ text: StaticString, into buffer: inout [UInt8]) {
      let start = buffer.count
      text.withUTF8Buffer { buffer.append(contentsOf: $0) }
      noteNonBlank(buffer, from: start)
    }

    private mutating func noteNonBlank(_ buffer: [UInt8], from start: Int) {
      var position = buffer.count
      while position > start && buffer[position - 1] == UInt8(ascii: " ") { position -= 1 }
      if position > start { keep = position }
    }

    private func open(_ style: Style, into buffer: inout [UInt8]) {
      buffer.append(0x1B)
      buffer.append(UInt8(ascii: "["))
      buffer.append(contentsOf: style.rawValue.utf8)
      buffer.append(UInt8(ascii: "m"))
    }

    private func close(into buffer: inout [UInt8]) {
      buffer.append(contentsOf: [0x1B, UInt8(ascii: "["), UInt8(ascii: "m")])
    }

    /// `name (count)` in `style`.
    mutating func header(_ name: String, count: Int, style: Style, into buffer: inout [UInt8]) {
      if colored { open(style, into: &buffer) }
      buffer.append(contentsOf: name.utf8)
      buffer.append(contentsOf: [UInt8(ascii: " "), UInt8(ascii: "(")])
      StatusView.appendDecimal(count, into: &buffer)
      buffer.append(UInt8(ascii: ")"))
      if colored { close(into: &buffer) }
    }

    /// The cell, cut to `width` columns (with `…`) and padded to it plus two blanks; a note (`width`
    /// `nil`) as it is.
    mutating func cell(_ cell: Cell, width: Int?, into buffer: inout [UInt8]) {
      var padding = 0
      var shown: Cell = cell
      var limit = Int.max
      var ellipsis = false
      if let width {
        if cell.width > width {
          if cell.ascii {
            limit = width > 1 ? width - 1 : width
            ellipsis = width > 1
          } else {
            shown = Cell(safe: StatusView.cut(cell.text, to: width), style: cell.style)
            padding = max(0, width - shown.width)
          }
        } else {
          padding = width - cell.width
        }
      }
      let start = buffer.count
      let painted = colored && cell.style != nil && shown.width > 0
      if painted, let style = cell.style { open(style, into: &buffer) }
      shown.write(into: &buffer, limit: limit)
      if ellipsis { buffer.append(contentsOf: [0xE2, 0x80, 0xA6]) }
      if painted { close(into: &buffer) }
      if cell.style != nil {
        keep = buffer.count
      } else {
        noteNonBlank(buffer, from: start)
      }
      if width != nil {
        buffer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding + 2))
      }
    }
  }
}
