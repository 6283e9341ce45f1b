using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.Tests.PipelinePage;

namespace Krustlet.Host.Tests.Agent;

/// <summary>The ports the agent listens on are kept from HTTP handlers: as set, and as bound when set to 0.</summary>
[TestClass]
public sealed class AgentRuntimeReservedPortsTests
{
    public TestContext TestContext { get; set; } = null!;

    private static AgentSettings Read(params string[] flags)
    {
        var settingsFlags = new SettingsFlags();
        var command = new System.CommandLine.RootCommand();
        settingsFlags.AddTo(command);
        var parse = command.Parse(flags);
        Assert.AreEqual(0, parse.Errors.Count, string.Join("; ", parse.Errors.Select(e => e.Message)));
        return settingsFlags.Read(parse, new Dictionary<string, string>());
    }

    [TestMethod]
    public void The_kubelet_port_and_the_page_port_are_reserved_as_set()
    {
        CollectionAssert.AreEqual(new[] { (10250, "Server:Port"), (10265, "Page:Port") }, AgentRuntime.ReservedBy(Read()).All.ToArray());
        CollectionAssert.AreEqual(new[] { (10250, "Server:Port") }, AgentRuntime.ReservedBy(Read("--page-port", "-1")).All.ToArray(), "no page");
        CollectionAssert.AreEqual(new[] { (10250, "Server:Port") }, AgentRuntime.ReservedBy(Read("--set", "Page:OnKubeletPort=true")).All.ToArray(), "the page on the kubelet port");
        CollectionAssert.AreEqual(new[] { (10265, "Page:Port") }, AgentRuntime.ReservedBy(Read("--port", "0")).All.ToArray(), "port 0 is reserved once bound");
    }

    [TestMethod]
    public void Outbound_network_is_allowed_unless_the_node_forbids_it()
    {
        Assert.IsTrue(Read().AllowNetwork);
        Assert.IsFalse(Read("--set", "Wasm:AllowNetwork=false").AllowNetwork);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Ports_set_to_0_are_reserved_as_bound_before_pods_flow()
    {
        await using var harness = await PipelinePageHarness.StartAsync(onKubeletPort: false, "token", TestContext.CancellationToken);

        var reserved = harness.Runtime.ReservedPorts;
        Assert.AreEqual("Server:Port", reserved.SettingOf(harness.Api!.Endpoint.Port));
        Assert.AreEqual("Page:Port", reserved.SettingOf(harness.Url.Port));
        Assert.HasCount(2, reserved.All);
    }
}
