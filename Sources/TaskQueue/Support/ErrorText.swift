import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How an error the libraries throw reads after `error: `, on one line.
public enum ErrorText {
  /// ``QueueError``'s description; `git: <message> (<libgit2 function>)` for a libgit2 error (the function
  /// only when `namingFunction`); a `LocalizedError`'s description; else the error as Swift prints it.
  public static func line(_ error: any Error, namingFunction: Bool = true) -> String {
    switch error {
    case let error as QueueError: error.description
    case let error as GitError:
      namingFunction ? "git: \(error.description) (\(error.function))" : "git: \(error.description)"
    default: (error as? any LocalizedError)?.errorDescription ?? "\(error)"
    }
  }
}
