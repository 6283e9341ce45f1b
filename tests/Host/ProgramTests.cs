namespace Krustlet.Host.Tests;

[TestClass]
public sealed class ProgramTests
{
    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Version_prints_the_agent_and_the_wasmtime_runtime()
    {
        using var output = new StringWriter();

        var exit = await Program.BuildCommand(output).Parse(["version"]).InvokeAsync();

        Assert.AreEqual(0, exit);
        var lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual($"krustlet {Program.AgentVersion}", lines[0]);
        Assert.AreEqual("runtime wasmtime://50.0.1", lines[1]);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task An_unknown_verb_fails()
    {
        using var output = new StringWriter();

        var exit = await Program.BuildCommand(output).Parse(["fly"]).InvokeAsync();

        Assert.AreNotEqual(0, exit);
    }
}
