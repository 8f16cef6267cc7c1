import TaskQueue

/// The outside world as a run sees it: the container engine, the agent, the server's health, the clock
/// and the interrupt (Ctrl-C, SIGTERM). Handed to ``TaskRunner`` and ``TaskPipeline`` (and the clock to
/// their ``QueueStore``), so the pipeline runs in-process against fakes in tests.
///
/// ``live(settings:)`` is what `git taskq run` uses: thin wrappers of the docker CLI, ``ProcessRunner``,
/// a loopback HTTP request, the system clock and the signal handlers of ``Interrupts``.
public struct RunEnvironment: Sendable {
  public var containers: any ContainerRuntime
  public var agents: any AgentRunner
  public var health: any HealthProbe
  public var clock: any WallClock
  /// Whether the run was asked to stop (Ctrl-C, SIGTERM); polled between and during stages.
  public var isInterrupted: @Sendable () -> Bool

  public init(
    containers: any ContainerRuntime, agents: any AgentRunner = ProcessAgentRunner(),
    health: any HealthProbe = LoopbackHealthProbe(), clock: any WallClock = SystemClock(),
    isInterrupted: @escaping @Sendable () -> Bool = { Interrupts.isRequested }
  ) {
    self.containers = containers
    self.agents = agents
    self.health = health
    self.clock = clock
    self.isInterrupted = isInterrupted
  }

  /// The real world for `settings`: its container program, with the setup timeout on every engine call.
  public static func live(settings: RunSettings) -> RunEnvironment {
    RunEnvironment(containers: ContainerEngine(program: settings.containerProgram, timeout: settings.setupTimeout))
  }
}
