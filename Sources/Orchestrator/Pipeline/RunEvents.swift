import Foundation
import TaskQueue

/// Progress of a `run`, as it happens.
///
/// On a terminal: a board on stderr with one line per active task (id, stage, elapsed), redrawn every second,
/// and each transition printed once above it. In a pipe, or with `--json`, one line per event on stdout.
public final class RunEvents: @unchecked Sendable {
  public enum Mode: Sendable { case board, lines, json }

  public let mode: Mode
  private let lock = NSLock()
  private var active: [String: (stage: String, since: Double)] = [:]
  private var drawnLines = 0
  private var outcomes: [(String, Outcome)] = []
  private var ticker: Thread?
  private var stopped = false

  public init(mode: Mode) {
    self.mode = mode
    if mode == .board {
      let thread = Thread { [weak self] in
        while let self, !self.isStopped {
          Thread.sleep(forTimeInterval: 1)
          self.lock.withLock { self.redraw() }
        }
      }
      ticker = thread
      thread.start()
    }
  }

  private var isStopped: Bool { lock.withLock { stopped } }

  /// A transition or stage change of task `id`.
  public func event(_ id: String, _ what: String, from: TaskStatus? = nil, to: TaskStatus? = nil, stage: String? = nil)
  {
    lock.withLock {
      let now = Self.now()
      if let stage {
        if let current = active[id], current.stage == stage {} else { active[id] = (stage, now) }
      }
      let time = String(Timestamp.iso(Timestamp.nowSeconds()).dropFirst(11).prefix(8))
      switch mode {
      case .json:
        var object: [String: Any] = ["time": Timestamp.now(), "task": id, "event": what]
        if let from { object["from"] = from.rawValue }
        if let to { object["to"] = to.rawValue }
        if let data = try? JSONSerialization.data(
          withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        {
          write(String(decoding: data, as: UTF8.self) + "\n", to: 1)
        }
      case .lines:
        write("\(time) \(line(id, what, from, to))\n", to: 1)
      case .board:
        clearBoard()
        write("\(time) \(line(id, what, from, to))\n", to: 2)
        redraw()
      }
    }
  }

  /// Task `id` is finished for this run.
  public func finished(_ id: String, _ outcome: Outcome) {
    lock.withLock {
      active[id] = nil
      outcomes.append((id, outcome))
    }
  }

  /// A line for the operator (warnings, recovery), on stderr.
  public func note(_ text: String) {
    lock.withLock {
      if mode == .board { clearBoard() }
      write(text + "\n", to: 2)
      if mode == .board { redraw() }
    }
  }

  /// Stops the board and returns the outcomes in the order they happened.
  public func stop() -> [(String, Outcome)] {
    lock.withLock {
      stopped = true
      if mode == .board { clearBoard() }
      return outcomes
    }
  }

  private func line(_ id: String, _ what: String, _ from: TaskStatus?, _ to: TaskStatus?) -> String {
    if let from, let to, from != to { return "\(id): \(from.rawValue) → \(to.rawValue) (\(what))" }
    return "\(id): \(what)"
  }

  private func clearBoard() {
    guard drawnLines > 0 else { return }
    write(String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawnLines) + "\r", to: 2)
    drawnLines = 0
  }

  private func redraw() {
    guard mode == .board, !stopped else { return }
    clearBoard()
    let now = Self.now()
    let lines = active.sorted { $0.key < $1.key }.map { id, entry in
      "  ▸ \(id)  \(entry.stage)  \(Timestamp.age(Int(now - entry.since)))"
    }
    if !lines.isEmpty { write(lines.joined(separator: "\n") + "\n", to: 2) }
    drawnLines = lines.count
  }

  private func write(_ text: String, to fd: Int32) {
    Output.write(text, to: fd)
  }

  static func now() -> Double { Date().timeIntervalSince1970 }
}
