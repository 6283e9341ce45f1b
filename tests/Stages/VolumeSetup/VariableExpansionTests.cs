using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Tests.VolumeSetup;

[TestClass]
public sealed class VariableExpansionTests
{
    private static readonly Dictionary<string, string> Vars = new() { ["VAR_A"] = "A", ["VAR_B"] = "B", ["EMPTY"] = string.Empty };

    [TestMethod]
    [DataRow("$(VAR_A)", "A")]
    [DataRow("___$(VAR_B)___", "___B___")]
    [DataRow("$(VAR_A)-$(VAR_B)", "A-B")]
    [DataRow("$(UNDEFINED)", "$(UNDEFINED)")]
    [DataRow("$$(VAR_A)", "$(VAR_A)")]
    [DataRow("$$$(VAR_A)", "$A")]
    [DataRow("$$", "$")]
    [DataRow("$", "$")]
    [DataRow("$(VAR_A", "$(VAR_A")]
    [DataRow("$VAR_A", "$VAR_A")]
    [DataRow("$(EMPTY)x", "x")]
    [DataRow("$()", "$()")]
    [DataRow("no vars", "no vars")]
    public void Expansion_follows_Kubernetes(string input, string expected) =>
        Assert.AreEqual(expected, VariableExpansion.Expand(input, n => Vars.TryGetValue(n, out var v) ? v : null));
}
