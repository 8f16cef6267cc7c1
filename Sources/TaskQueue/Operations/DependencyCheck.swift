extension QueueTransaction {
  /// Every dependency of task `id` is a valid id, not the task itself, and in the queue: the rule `add`
  /// and `edit` share, with the same words.
  func checkDependenciesExist(of id: String, _ dependencies: [String]) throws {
    for dependency in dependencies {
      try TaskID.validate(dependency)
      if dependency == id { throw QueueError.dependency("task '\(id)' cannot depend on itself") }
      if try record(dependency) == nil {
        throw QueueError.dependency("task '\(id)' depends on '\(dependency)', which is not in the queue (add it first)")
      }
    }
  }

  /// No dependency of `record` leads back to it (`edit` can close a cycle; `add` cannot, since nothing
  /// depends on a new task yet).
  func checkNoDependencyCycle(_ record: TaskRecord) throws {
    var byID: [String: TaskRecord] = [:]
    for other in try allRecords() { byID[other.id] = other }
    byID[record.id] = record
    // Depth-first from each dependency: reaching the task again is a cycle.
    var seen: Set<String> = []
    func path(from id: String) -> [String]? {
      if id == record.id { return [id] }
      guard seen.insert(id).inserted else { return nil }
      for next in byID[id]?.dependsOn ?? [] {
        if let rest = path(from: next) { return [id] + rest }
      }
      return nil
    }
    for dependency in record.dependsOn {
      if let cycle = path(from: dependency) {
        throw QueueError.dependency(
          "depending on '\(dependency)' would make a cycle: \(([record.id] + cycle).joined(separator: " -> "))")
      }
    }
  }
}
