import ArgumentParser

@main
struct Entrypoint {
  static func main() async {
    await GitTaskq.main()
  }
}
