using Krustlet.Stages.Run;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary><c>kubectl logs -f</c> on a real module run by the real stages, while it writes.</summary>
[TestClass]
public sealed class ContainerLogsWasmTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Following_a_running_module_shows_every_line_it_writes_and_ends_when_it_exits()
    {
        await using var node = await WasmNode.StartAsync(TestContext.CancellationToken);
        var pod = WasmNode.Pod("ticker", await node.PushAsync(WasmFixtures.C("ticker"), "ticker", TestContext.CancellationToken), "20");
        await node.RunAsync(pod, TestContext.CancellationToken);
        using var http = node.Client();
        var followed = await http.GetStringAsync(new Uri("/containerLogs/default/ticker/main?follow=true", UriKind.Relative), TestContext.CancellationToken);

        Assert.AreEqual(string.Concat(Enumerable.Range(0, 20).Select(i => $"tick {i}\n")), followed);
        Assert.IsInstanceOfType<TerminatedState>(node.Pipeline.Stages.Run.Current(pod.Metadata.Uid)!.Containers[0].State, "the stream ended because the run did");
    }
}
