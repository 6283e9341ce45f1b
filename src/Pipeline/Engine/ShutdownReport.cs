namespace Krustlet.Pipeline.Engine;

/// <summary>What a pipeline left behind when it stopped.</summary>
/// <param name="Drained">Work items that finished after the stop began (completed, failed or cancelled).</param>
/// <param name="CancelledKeys">Keys whose in-flight work was cancelled because the shutdown deadline passed.</param>
/// <param name="AbandonedKeys">Keys with events that never became work (they were waiting behind in-flight work, or could not be sent).</param>
/// <param name="StuckKeys">Keys whose work did not finish even after cancellation and the grace period.</param>
public sealed record ShutdownReport(
    int Drained,
    IReadOnlyList<string> CancelledKeys,
    IReadOnlyList<string> AbandonedKeys,
    IReadOnlyList<string> StuckKeys)
{
    /// <summary>True when every in-flight item finished before the deadline.</summary>
    public bool Clean => CancelledKeys.Count == 0 && StuckKeys.Count == 0;
}
