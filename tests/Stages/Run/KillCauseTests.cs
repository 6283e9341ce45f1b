using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Stages.Tests.Run;

/// <summary>A kill's cause is a value on the container's control: the first one given is kept; a passed deadline is one.</summary>
[TestClass]
public sealed class KillCauseTests
{
    [TestMethod]
    public void The_first_cause_is_kept()
    {
        var control = new ContainerControl(TimeProvider.System);
        Assert.IsNull(control.Cause);

        control.Kill(KillCause.DefinitionChanged("main"));
        control.Kill(KillCause.Stopped("the pod is being deleted"));

        Assert.AreEqual(KillKind.DefinitionChanged, control.Cause!.Kind);
        Assert.AreEqual("Container main definition changed, will be restarted", control.Cause.Message);
    }

    [TestMethod]
    public void A_passed_deadline_is_a_DeadlineExceeded_kill()
    {
        var time = new FakeTimeProvider();
        var control = new ContainerControl(time, deadline: time.GetUtcNow().AddSeconds(30));
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.IsNull(control.Cause);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.IsTrue(control.ShouldStop(out var cause));
        Assert.AreSame(KillCause.DeadlineExceeded, cause);
        Assert.AreSame(cause, control.Cause);
        StringAssert.StartsWith(cause.Message, "DeadlineExceeded");
    }

    [TestMethod]
    public void A_failed_probe_is_worded_as_the_kubelet_with_the_restart_only_when_one_follows()
    {
        Assert.AreEqual(KillKind.ProbeFailed, KillCause.ProbeFailed("main", "liveness", restarts: true).Kind);
        Assert.AreEqual("Container main failed liveness probe, will be restarted", KillCause.ProbeFailed("main", "liveness", restarts: true).Message);
        Assert.AreEqual("Container main failed startup probe", KillCause.ProbeFailed("main", "startup", restarts: false).Message);
    }

    [TestMethod]
    public void Each_run_of_a_container_has_its_own_id() =>
        Assert.AreEqual("wasm://uid-1/main/3", ContainerIds.Of("uid-1", "main", 3));
}
