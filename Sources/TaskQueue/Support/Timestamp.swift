#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// UTC timestamps in ISO-8601 with an explicit offset (`2026-11-25T10:15:00+00:00`), as the seed wrote them,
/// made without `DateFormatter` (which costs milliseconds to set up).
public enum Timestamp {
  /// Seconds since 1970 now.
  public static func nowSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int(ts.tv_sec)
  }

  public static func now() -> String { iso(nowSeconds()) }

  /// `2026-11-25T10:15:00+00:00`.
  public static func iso(_ seconds: Int) -> String {
    let f = fields(seconds)
    return "\(f.0)-\(pad(f.1))-\(pad(f.2))T\(pad(f.3)):\(pad(f.4)):\(pad(f.5))+00:00"
  }

  /// `20261125T101500Z`, for file and container names.
  public static func compact(_ seconds: Int) -> String {
    let f = fields(seconds)
    return "\(f.0)\(pad(f.1))\(pad(f.2))T\(pad(f.3))\(pad(f.4))\(pad(f.5))Z"
  }

  /// Parses what ``iso(_:)`` writes (and any `YYYY-MM-DDTHH:MM:SS` prefix with `Z` or `±HH:MM`); `nil` otherwise.
  public static func parse(_ text: String) -> Int? {
    let b = Array(text.utf8)
    guard b.count >= 19 else { return nil }
    func num(_ from: Int, _ len: Int) -> Int? {
      var v = 0
      for i in from..<(from + len) {
        guard b[i] >= 48 && b[i] <= 57 else { return nil }
        v = v * 10 + Int(b[i] - 48)
      }
      return v
    }
    guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
      let s = num(17, 2)
    else { return nil }
    var offset = 0
    var rest = 19
    if rest < b.count, b[rest] == UInt8(ascii: ".") {
      rest += 1
      while rest < b.count, b[rest] >= 48 && b[rest] <= 57 { rest += 1 }
    }
    if rest + 6 <= b.count, b[rest] == UInt8(ascii: "+") || b[rest] == UInt8(ascii: "-"),
      let oh = num(rest + 1, 2), let om = num(rest + 4, 2)
    {
      offset = (oh * 3600 + om * 60) * (b[rest] == UInt8(ascii: "-") ? -1 : 1)
    }
    var t = tm()
    t.tm_year = Int32(y - 1900)
    t.tm_mon = Int32(mo - 1)
    t.tm_mday = Int32(d)
    t.tm_hour = Int32(h)
    t.tm_min = Int32(mi)
    t.tm_sec = Int32(s)
    return Int(timegm(&t)) - offset
  }

  /// `3s`, `5m`, `2h`, `4d`: a short age for tables.
  public static func age(_ seconds: Int) -> String {
    let s = max(0, seconds)
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" }
    if s < 86400 { return "\(s / 3600)h" }
    return "\(s / 86400)d"
  }

  private static func fields(_ seconds: Int) -> (Int, Int, Int, Int, Int, Int) {
    var time = time_t(seconds)
    var t = tm()
    gmtime_r(&time, &t)
    return (Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday), Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec))
  }

  private static func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
