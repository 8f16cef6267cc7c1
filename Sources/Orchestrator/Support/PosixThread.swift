#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX thread that runs one closure: the part of `Foundation.Thread` this code uses (worker threads,
/// a board's ticker, a pipe writer). Full Foundation, where `Thread` lives, loads ICU and costs every
/// process milliseconds of start-up (issue 15).
final class PosixThread {
  private final class Body {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
  }

  struct StartError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { "cannot start a thread: \(String(cString: strerror(code)))" }
  }

  #if os(Linux)
  private var id = pthread_t()
  #else
  private var id: pthread_t?
  #endif
  private var isJoinable = true

  /// Starts `body` on a new thread (with a stack of `stackSize` bytes, else the system's default).
  ///
  /// - Throws: ``StartError`` when the system refuses a thread.
  init(stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) throws {
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    let rc = pthread_create(
      &id, &attributes,
      { context in
        #if os(Linux)
        guard let context else { return nil }
        #endif
        Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
        return nil
      }, context)
    guard rc == 0 else {
      Unmanaged<Body>.fromOpaque(context).release()
      throw StartError(code: rc)
    }
  }

  /// Waits until the thread has ended.
  func join() {
    guard isJoinable else { return }
    isJoinable = false
    #if os(Linux)
    pthread_join(id, nil)
    #else
    if let id { pthread_join(id, nil) }
    #endif
  }

  /// Lets the thread end on its own: nobody will wait for it.
  func detach() {
    guard isJoinable else { return }
    isJoinable = false
    #if os(Linux)
    pthread_detach(id)
    #else
    if let id { pthread_detach(id) }
    #endif
  }
}
