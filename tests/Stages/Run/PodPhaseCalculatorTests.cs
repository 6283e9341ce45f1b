using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests.Run;

/// <summary>
/// The phase table, in the manner of the kubelet's getPhase tests. A container is written as
/// <c>R</c> running, <c>W</c> waiting (not started yet), <c>B1</c>/<c>B0</c> waiting to restart after a run
/// that exited 1/0, <c>T0</c>/<c>T1</c> terminated for good with that exit code; init containers, then app containers.
/// </summary>
[TestClass]
public sealed class PodPhaseCalculatorTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static ContainerStatusSnapshot[] Containers(string states) =>
        [.. states.Split(',', StringSplitOptions.RemoveEmptyEntries).Select((s, i) => Container($"c{i}", s))];

    private static ContainerStatusSnapshot Container(string name, string state)
    {
        static TerminatedState Exited(int code) => new(code, code == 0 ? "Completed" : "Error", null, At, At.AddSeconds(1), null);
        var (current, last) = state switch
        {
            "R" => ((ContainerState)new RunningState(At), (TerminatedState?)null),
            "W" => (new WaitingState("ContainerCreating", null), null),
            "B0" => (new WaitingState("CrashLoopBackOff", null), Exited(0)),
            "B1" => (new WaitingState("CrashLoopBackOff", null), Exited(1)),
            "T0" => (Exited(0), null),
            "T1" => (Exited(1), null),
            _ => throw new ArgumentException(state, nameof(state)),
        };
        return new ContainerStatusSnapshot(name, current, last, last is null ? 0 : 1, "image", "sha256:0", null);
    }

    [TestMethod]
    // No init containers.
    [DataRow(RestartPolicy.Always, "", "W", PodPhase.Pending, DisplayName = "nothing started yet")]
    [DataRow(RestartPolicy.Always, "", "R,R", PodPhase.Running, DisplayName = "all running")]
    [DataRow(RestartPolicy.Always, "", "R,W", PodPhase.Running, DisplayName = "one running, one being created")]
    [DataRow(RestartPolicy.Always, "", "B0", PodPhase.Running, DisplayName = "Always: restarting after a success")]
    [DataRow(RestartPolicy.OnFailure, "", "B1", PodPhase.Running, DisplayName = "OnFailure: restarting after a failure")]
    [DataRow(RestartPolicy.OnFailure, "", "T0,R", PodPhase.Running, DisplayName = "one done, one running")]
    [DataRow(RestartPolicy.Never, "", "T0,T0", PodPhase.Succeeded, DisplayName = "all terminated in success")]
    [DataRow(RestartPolicy.Never, "", "T0,T1", PodPhase.Failed, DisplayName = "all terminated, one failed")]
    [DataRow(RestartPolicy.OnFailure, "", "T0", PodPhase.Succeeded, DisplayName = "OnFailure: terminated in success")]
    [DataRow(RestartPolicy.Always, "", "T1,T0", PodPhase.Failed, DisplayName = "Always: all terminated for good (stopped), one failed")]
    // Init containers.
    [DataRow(RestartPolicy.Never, "R", "W", PodPhase.Pending, DisplayName = "init running")]
    [DataRow(RestartPolicy.Never, "T0,R", "W", PodPhase.Pending, DisplayName = "Never: first init done, second running")]
    [DataRow(RestartPolicy.Never, "T0,W", "W", PodPhase.Pending, DisplayName = "Never: first init done, second not started")]
    [DataRow(RestartPolicy.Never, "T1", "W", PodPhase.Failed, DisplayName = "Never: init failed")]
    [DataRow(RestartPolicy.Never, "T0,T1", "W", PodPhase.Failed, DisplayName = "Never: second init failed")]
    [DataRow(RestartPolicy.OnFailure, "B1", "W", PodPhase.Pending, DisplayName = "OnFailure: init restarting")]
    [DataRow(RestartPolicy.Always, "T1", "W", PodPhase.Pending, DisplayName = "Always: init terminated (stopped) is not a failed pod")]
    [DataRow(RestartPolicy.Never, "T0,T0", "R", PodPhase.Running, DisplayName = "initialized, app running")]
    [DataRow(RestartPolicy.Never, "T0", "T0", PodPhase.Succeeded, DisplayName = "initialized, app succeeded")]
    public void The_phase_follows_the_containers_states(RestartPolicy policy, string init, string apps, PodPhase expected)
    {
        var phase = PodPhaseCalculator.Compute(policy, Containers(init), Containers(apps), failure: null);

        Assert.AreEqual(new PodPhaseResult(expected), phase);
    }

    [TestMethod]
    public void A_pod_failure_fails_the_pod_with_its_reason_whatever_the_containers_do()
    {
        var phase = PodPhaseCalculator.Compute(RestartPolicy.Always, [], Containers("R"), PodFailure.DeadlineExceeded);

        Assert.AreEqual(new PodPhaseResult(PodPhase.Failed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"), phase);
        Assert.AreEqual(new PodPhaseResult(PodPhase.Failed, "Evicted", "disk"), PodPhaseCalculator.Compute(RestartPolicy.Never, Containers("R"), Containers("W"), PodFailure.Evicted("disk")));
    }
}
