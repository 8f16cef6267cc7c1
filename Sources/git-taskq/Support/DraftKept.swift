import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An error after the user edited a draft: the error, and where their text is kept.
struct DraftKept: Error, LocalizedError, CustomStringConvertible {
  var error: any Error
  var path: String
  var retry: String

  /// The error itself, on one line.
  var line: String { ErrorText.line(error, namingFunction: false) }

  /// The second line: where the text is and how to get back to it.
  var hint: String { "hint: nothing was recorded; your text is kept in '\(path)' and '\(retry)' opens it again" }

  var description: String { "\(line)\n\(hint)" }

  var errorDescription: String? { description }
}
