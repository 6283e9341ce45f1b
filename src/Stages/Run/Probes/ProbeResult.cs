namespace Krustlet.Stages.Run.Probes;

/// <summary>How one probe attempt ended, as the kubelet's probe.Result.</summary>
internal enum ProbeOutcome
{
    Success,

    /// <summary>Counts as a success, with a <c>ProbeWarning</c> Event (a redirect to another host).</summary>
    Warning,

    Failure,

    /// <summary>The probe could not be run (its port resolves to nothing): an Event, and the result is thrown away.</summary>
    Error,
}

/// <summary>One attempt's outcome and the kubelet's words for it (the Event's text after "… probe failed: ").</summary>
internal readonly record struct ProbeResult(ProbeOutcome Outcome, string Message)
{
    public static ProbeResult Success(string message = "") => new(ProbeOutcome.Success, message);

    public static ProbeResult Failure(string message) => new(ProbeOutcome.Failure, message);

    public static ProbeResult Error(string message) => new(ProbeOutcome.Error, message);

    public static ProbeResult Warning(string message) => new(ProbeOutcome.Warning, message);
}
