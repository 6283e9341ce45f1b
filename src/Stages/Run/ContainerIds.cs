using System.Globalization;

namespace Krustlet.Stages.Run;

/// <summary>The id of one run of a container, as the kubelet's containerID: <c>wasm://&lt;pod uid&gt;/&lt;container&gt;/&lt;restart&gt;</c>.</summary>
public static class ContainerIds
{
    public static string Of(string podUid, string container, int restart) =>
        string.Create(CultureInfo.InvariantCulture, $"wasm://{podUid}/{container}/{restart}");
}
