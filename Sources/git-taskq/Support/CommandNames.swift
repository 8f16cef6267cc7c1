import ArgumentParser

// The name of each command, given rather than derived. argument-parser derives a name that its
// configuration does not give from the type's name (`String(describing: Self.self)`, a reflection of
// the type), for every command, each time it sets up the command tree to parse a command line: 6 % of
// a `git taskq status --id` (perf). Declared here, in one place, rather than in each command's file.
// `git-taskq __complete --check-table` (CompletionTableTests) checks these names against the table.

extension GitTaskq.Add { static var _commandName: String { "add" } }
extension GitTaskq.Edit { static var _commandName: String { "edit" } }
extension GitTaskq.Status { static var _commandName: String { "status" } }
extension GitTaskq.Show { static var _commandName: String { "show" } }
extension GitTaskq.Log { static var _commandName: String { "log" } }
extension GitTaskq.Approve { static var _commandName: String { "approve" } }
extension GitTaskq.Cancel { static var _commandName: String { "cancel" } }
extension GitTaskq.Retry { static var _commandName: String { "retry" } }
extension GitTaskq.Remove { static var _commandName: String { "remove" } }
extension GitTaskq.Run { static var _commandName: String { "run" } }
extension GitTaskq.Review { static var _commandName: String { "review" } }
extension GitTaskq.Cleanup { static var _commandName: String { "cleanup" } }
extension GitTaskq.Recover { static var _commandName: String { "recover" } }
extension GitTaskq.Sync { static var _commandName: String { "sync" } }
extension GitTaskq.Config { static var _commandName: String { "config" } }
