using Krustlet.Stages.Run;

namespace Krustlet.Stages.Tests.Run;

/// <summary>What follows a container's run: the restart policy, the kill's cause, init or app, the pod stopping.</summary>
[TestClass]
public sealed class RestartDecisionTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static ContainerExit Exit(int code) => new(ExitKind.Exited, code, code == 0 ? "Completed" : "Error", null, At, At.AddSeconds(1));

    private static ContainerExit Killed() => new(ExitKind.Killed, ContainerExit.KilledExitCode, "Error", "killed", At, At.AddSeconds(1));

    [TestMethod]
    [DataRow(RestartPolicy.Always, false, 0, RestartAction.RestartAfterBackoff, DisplayName = "Always restarts an app's success")]
    [DataRow(RestartPolicy.Always, false, 1, RestartAction.RestartAfterBackoff, DisplayName = "Always restarts an app's failure")]
    [DataRow(RestartPolicy.OnFailure, false, 0, RestartAction.Stop, DisplayName = "OnFailure leaves an app's success")]
    [DataRow(RestartPolicy.OnFailure, false, 1, RestartAction.RestartAfterBackoff, DisplayName = "OnFailure restarts an app's failure")]
    [DataRow(RestartPolicy.Never, false, 1, RestartAction.Stop, DisplayName = "Never leaves an app's failure")]
    [DataRow(RestartPolicy.Always, true, 0, RestartAction.Stop, DisplayName = "an init container's success is done, even under Always")]
    [DataRow(RestartPolicy.Always, true, 1, RestartAction.RestartAfterBackoff, DisplayName = "Always restarts an init container's failure")]
    [DataRow(RestartPolicy.Never, true, 1, RestartAction.Stop, DisplayName = "Never leaves an init container's failure")]
    public void An_exit_follows_the_restart_policy(RestartPolicy policy, bool initContainer, int exitCode, RestartAction expected) =>
        Assert.AreEqual(expected, RestartDecision.After(Exit(exitCode), cause: null, policy, initContainer, podStopping: false));

    [TestMethod]
    [DataRow(RestartPolicy.Always)]
    [DataRow(RestartPolicy.Never)]
    public void A_container_killed_for_a_changed_definition_restarts_at_once_whatever_the_policy(RestartPolicy policy) =>
        Assert.AreEqual(RestartAction.RestartNow, RestartDecision.After(Killed(), KillCause.DefinitionChanged("main"), policy, initContainer: false, podStopping: false));

    [TestMethod]
    [DataRow(RestartPolicy.Always, RestartAction.RestartAfterBackoff)]
    [DataRow(RestartPolicy.OnFailure, RestartAction.RestartAfterBackoff)]
    [DataRow(RestartPolicy.Never, RestartAction.Stop)]
    public void A_container_killed_by_a_failed_probe_follows_the_restart_policy_as_a_failure(RestartPolicy policy, RestartAction expected)
    {
        Assert.AreEqual(expected, RestartDecision.After(Killed(), KillCause.ProbeFailed("main", "liveness", policy != RestartPolicy.Never), policy, initContainer: false, podStopping: false));
        Assert.AreEqual(RestartAction.Stop, RestartDecision.After(Killed(), KillCause.ProbeFailed("main", "liveness", true), policy, initContainer: false, podStopping: true), "a deletion wins");
    }

    [TestMethod]
    public void Nothing_restarts_once_the_pod_is_stopping_or_after_any_other_kill()
    {
        Assert.AreEqual(RestartAction.Stop, RestartDecision.After(Exit(1), null, RestartPolicy.Always, false, podStopping: true));
        Assert.AreEqual(RestartAction.Stop, RestartDecision.After(Killed(), KillCause.DefinitionChanged("main"), RestartPolicy.Always, false, podStopping: true), "a deletion wins over a definition change");
        Assert.AreEqual(RestartAction.Stop, RestartDecision.After(Killed(), KillCause.DeadlineExceeded, RestartPolicy.Always, false, podStopping: false));
        Assert.AreEqual(RestartAction.Stop, RestartDecision.After(Killed(), KillCause.Evicted("disk"), RestartPolicy.Always, false, podStopping: false));
    }

    [TestMethod]
    public void The_backoff_message_is_the_kubelets() =>
        Assert.AreEqual("back-off 2.5s restarting failed container=main pod=web_default(uid-1)", RestartDecision.BackOffMessage(TimeSpan.FromSeconds(2.5), "main", "web", "default", "uid-1"));

    [TestMethod]
    [DataRow(null, RestartPolicy.Always)]
    [DataRow("Always", RestartPolicy.Always)]
    [DataRow("OnFailure", RestartPolicy.OnFailure)]
    [DataRow("Never", RestartPolicy.Never)]
    [DataRow("never", RestartPolicy.OnFailure, DisplayName = "a value the API server refuses acts as OnFailure")]
    public void The_restart_policy_is_parsed_once_defaulting_to_Always(string? value, RestartPolicy expected) =>
        Assert.AreEqual(expected, RestartPolicies.Parse(value));
}
