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

  var description: String {
    let text = ErrorText.line(error, namingFunction: false)
    return "\(text)\nhint: nothing was recorded; your text is kept in '\(path)' and '\(retry)' opens it again"
  }

  var errorDescription: String? { description }
}
