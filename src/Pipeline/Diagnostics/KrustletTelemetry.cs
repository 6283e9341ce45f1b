using System.Diagnostics;

namespace Krustlet.Pipeline.Diagnostics;

/// <summary>The one <see cref="ActivitySource"/> of the agent, and the tag names its spans and metrics use.</summary>
public static class KrustletTelemetry
{
    public const string ActivitySourceName = "Krustlet";

    public static ActivitySource ActivitySource { get; } = new(ActivitySourceName);

    /// <summary>Stage name tag on spans and metrics.</summary>
    public const string StageTag = "krustlet.stage";

    /// <summary>"apply" or "teardown".</summary>
    public const string PathTag = "krustlet.path";

    /// <summary>The work key (a pod UID).</summary>
    public const string KeyTag = "krustlet.key";

    public const string ApplyPath = "apply";
    public const string TeardownPath = "teardown";
}
