using k8s.Models;
using Krustlet.Stages.Run;

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

        CollectionAssert.AreEqual(
            new[]
            {
                ("web", false, "Created", "Created container main"),
                ("web", false, "Started", "Started container main"),
                ("web", false, "Killing", "Stopping container main"),
                ("web", false, "Killing", "Container main definition changed, will be restarted"),
                ("web", true, "BackOff", "Back-off restarting failed container main in pod web_shop(uid-web)"),
            },
            recorded.All.ToArray());
    }
}
