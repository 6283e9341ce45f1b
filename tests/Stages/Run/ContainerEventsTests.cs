using k8s.Models;
using Krustlet.Stages.Run;
using Krustlet.Stages.Run.Probes;

namespace Krustlet.Stages.Tests.Run;

/// <summary>The container Events carry the kubelet's reasons and wording.</summary>
[TestClass]
public sealed class ContainerEventsTests
{
    [TestMethod]
    public void Each_event_has_the_kubelets_reason_and_message()
    {
        var recorded = new RecordedEvents();
        var events = new ContainerEvents(recorded);
        var pod = new V1Pod { Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop", Uid = "uid-web" } };

        events.Started(pod, "main");
        events.Stopping(pod, "main");
        events.Killing(pod, "main", KillCause.DefinitionChanged("main"));
        events.BackOff(pod, "main");
        var liveness = ProbeSpec.Of(ProbeKind.Liveness, new V1Probe { TcpSocket = new V1TCPSocketAction { Port = 80 } })!;
        var readiness = ProbeSpec.Of(ProbeKind.Readiness, new V1Probe { TcpSocket = new V1TCPSocketAction { Port = 80 } })!;
        events.Probed(pod, "main", liveness, ProbeResult.Failure("HTTP probe failed with statuscode: 500"));
        events.Killing(pod, "main", KillCause.ProbeFailed("main", "liveness", restarts: true));
        events.Probed(pod, "main", readiness, ProbeResult.Warning("Probe terminated redirects, Response body: "));
        events.Probed(pod, "main", readiness, ProbeResult.Error("invalid port number: 0"));

        CollectionAssert.AreEqual(
            new[]
            {
                ("web", false, "Created", "Created container main"),
                ("web", false, "Started", "Started container main"),
                ("web", false, "Killing", "Stopping container main"),
                ("web", false, "Killing", "Container main definition changed, will be restarted"),
                ("web", true, "BackOff", "Back-off restarting failed container main in pod web_shop(uid-web)"),
                ("web", true, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500"),
                ("web", false, "Killing", "Container main failed liveness probe, will be restarted"),
                ("web", true, "ProbeWarning", "Readiness probe warning: Probe terminated redirects, Response body: "),
                ("web", true, "Unhealthy", "Readiness probe errored: invalid port number: 0"),
            },
            recorded.All.ToArray());
    }
}
