import Synchronization
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a board shows at one moment: the tasks at work and what this run has finished.
public struct RunBoardState: Sendable {
  /// Tasks at work, by id: their stage and how long they have been in it (seconds).
  public var active: [(id: String, stage: String, seconds: Int)]
  /// The tasks this run finished, in order.
  public var outcomes: [(id: String, outcome: Outcome)]
}

/// Draws the live board of a `run` on a terminal (the executable's `RunBoard`): the drawing, its colours
/// and its escape sequences live there, not here.
///
/// Every call is made with the events' lock held, so calls never overlap.
public protocol RunDisplay: AnyObject, Sendable {
  /// Replaces the board on the screen with `state`.
  func draw(_ state: RunBoardState)
  /// Removes the board from the screen, so that a line can be printed where it was.
  func clear()
  /// Prints one line above the board (a finished task, a warning).
  func print(_ line: String)
  /// The run is over: remove the board and give the terminal back as it was.
  func finish()
}

/// Progress of a `run`, as it happens.
///
/// With a display (a terminal): the board shows one line per active task, redrawn every second, and the
/// lines that matter (a task that finished, a warning) are printed once above it. In a pipe, or with
/// `--json`, one line per event on stdout. Queue data in the lines is shown with its control characters
/// visible (``TerminalText``).
public final class RunEvents: Sendable {
  public enum Mode: Sendable { case board, lines, json }

  public let mode: Mode
  private let display: (any RunDisplay)?
  /// What the board shows, behind one lock: every output is made while holding it, so lines never mix.
  private struct State {
    var active: [String: (stage: String, since: Double)] = [:]
    var outcomes: [(String, Outcome)] = []
    var stopped = false
  }
  private let state = Mutex(State())

  /// - Parameters:
  ///   - mode: `.board` draws through `display` (and falls back to `.lines` without one).
  ///   - display: the board's drawing.
  public init(mode: Mode, display: (any RunDisplay)? = nil) {
    self.mode = mode == .board && display == nil ? .lines : mode
    self.display = display
    if self.mode == .board {
      // Without a thread (the system refused one) the board is redrawn at each event only.
      let ticker = try? PosixThread { [weak self] in
        while let self, !self.isStopped {
          usleep(1_000_000)
          self.state.withLock { self.redraw($0) }
        }
      }
      ticker?.detach()
    }
  }

  private var isStopped: Bool { state.withLock { $0.stopped } }

  /// A transition or stage change of task `id`.
  public func event(_ id: String, _ what: String, from: TaskStatus? = nil, to: TaskStatus? = nil, stage: String? = nil)
  {
    state.withLock { state in
      let now = Self.now()
      if let stage {
        if let current = state.active[id], current.stage == stage {} else { state.active[id] = (stage, now) }
      }
      let time = String(Timestamp.iso(Timestamp.nowSeconds()).dropFirst(11).prefix(8))
      switch mode {
      case .json:
        struct Event: Encodable {
          var time: String
          var task: String
          var event: String
          var from: String?
          var to: String?
        }
        let object = Event(time: Timestamp.now(), task: id, event: what, from: from?.rawValue, to: to?.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // An object of strings always encodes; should it not, the event is left out of the stream
        // rather than stop a run that is doing its work.
        if let data = try? encoder.encode(object) {
          write(String(decoding: data, as: UTF8.self) + "\n", to: 1)
        }
      case .lines:
        write("\(time) \(TerminalText.line(line(id, what, from, to)))\n", to: 1)
      case .board:
        // The board shows each task's stage; above it go only the moves that end a task's part in this
        // run (review, failed, cancelled), so a task takes one line there, not one per stage.
        if let to, to != from, !to.isActive, to != .todo {
          display?.print("\(time) \(TerminalText.line(line(id, what, from, to)))")
        }
        redraw(state)
      }
    }
  }

  /// Task `id` is finished for this run.
  public func finished(_ id: String, _ outcome: Outcome) {
    state.withLock { state in
      state.active[id] = nil
      state.outcomes.append((id, outcome))
      if mode == .board, [.cancelled, .interrupted].contains(outcome) || outcome.label == "lost" {
        let time = String(Timestamp.iso(Timestamp.nowSeconds()).dropFirst(11).prefix(8))
        display?.print("\(time) \(TerminalText.line(id)): \(outcome.label)")
      }
      redraw(state)
    }
  }

  /// A line for the operator (warnings, recovery), on stderr.
  public func note(_ text: String) {
    state.withLock { state in
      if mode == .board, let display {
        display.print(TerminalText.line(text))
        redraw(state)
      } else {
        write(TerminalText.line(text) + "\n", to: 2)
      }
    }
  }

  /// Stops the board and returns the outcomes in the order they happened.
  public func stop() -> [(String, Outcome)] {
    state.withLock { state in
      if !state.stopped, mode == .board { display?.finish() }
      state.stopped = true
      return state.outcomes
    }
  }

  private func line(_ id: String, _ what: String, _ from: TaskStatus?, _ to: TaskStatus?) -> String {
    if let from, let to, from != to { return "\(id): \(from.rawValue) → \(to.rawValue) (\(what))" }
    return "\(id): \(what)"
  }

  private func redraw(_ state: State) {
    guard mode == .board, !state.stopped, let display else { return }
    let now = Self.now()
    let tasks = state.active.sorted { $0.key < $1.key }.map {
      (id: $0.key, stage: $0.value.stage, seconds: Int(now - $0.value.since))
    }
    display.draw(RunBoardState(active: tasks, outcomes: state.outcomes.map { (id: $0.0, outcome: $0.1) }))
  }

  private func write(_ text: String, to fd: Int32) {
    Output.write(text, to: fd)
  }

  static func now() -> Double { Date().timeIntervalSince1970 }
}
