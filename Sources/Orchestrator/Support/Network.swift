#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Loopback networking: whether a port binds, and a minimal HTTP GET for health checks.
///
/// Only ever 127.0.0.1: the queue is shared input, so a port from it must never make us connect elsewhere.
public enum Loopback {
  /// Whether `port` can be bound on 127.0.0.1 right now.
  public static func isFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return withAddress(port) { bind(fd, $0, $1) == 0 }
  }

  /// Whether something accepts connections on 127.0.0.1:`port` right now.
  public static func isListening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return withAddress(port) { connect(fd, $0, $1) == 0 }
  }

  /// Calls `body` with the address 127.0.0.1:`port` and its length.
  private static func withAddress<T>(_ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
  }

  /// `GET path` on 127.0.0.1:`port`; returns the HTTP status code, or `nil` when nothing answered in time.
  public static func httpStatus(port: Int, path: String, timeout: Double = 2, authorization: String? = nil) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    guard withAddress(port, { connect(fd, $0, $1) == 0 }) else { return nil }
    var request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    if let authorization { request += "Authorization: \(authorization)\r\n" }
    request += "\r\n"
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
      return nil
    }
    var buffer = [UInt8](repeating: 0, count: 512)
    var received: [UInt8] = []
    while received.count < 64 {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { break }
      received.append(contentsOf: buffer[0..<n])
      if received.contains(UInt8(ascii: "\n")) { break }
    }
    // "HTTP/1.1 200 OK"
    let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    let parts = line.split(separator: " ")
    guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else { return nil }
    return Int(parts[1])
  }
}
