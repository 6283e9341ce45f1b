using Microsoft.Extensions.Logging;

namespace Krustlet.Pipeline.Diagnostics;

/// <summary>The engine's log messages. Event ids 1000-1099 belong to the pipeline.</summary>
internal static partial class PipelineLog
{
    [LoggerMessage(1000, LogLevel.Warning, "Stage {Stage} failed work for {Key}: {Reason}: {Message}")]
    public static partial void StageFailed(ILogger logger, string stage, string key, string reason, string message);

    [LoggerMessage(1001, LogLevel.Error, "Stage {Stage} threw for {Key}; reported as that key's failure")]
    public static partial void StageThrew(ILogger logger, string stage, string key, Exception exception);

    [LoggerMessage(1002, LogLevel.Debug, "Work for {Key} cancelled in stage {Stage}")]
    public static partial void StageCancelled(ILogger logger, string stage, string key);

    [LoggerMessage(1003, LogLevel.Error, "The result sink threw for {Key}; the result was not reported")]
    public static partial void SinkThrew(ILogger logger, string key, Exception exception);

    [LoggerMessage(1004, LogLevel.Information, "Pipeline stopping: {InFlight} work items in flight, {Pending} keys with waiting events")]
    public static partial void Stopping(ILogger logger, int inFlight, int pending);

    [LoggerMessage(1005, LogLevel.Warning, "Shutdown deadline of {Timeout} passed; cancelling work for {Count} keys")]
    public static partial void ShutdownDeadline(ILogger logger, TimeSpan timeout, int count);

    [LoggerMessage(1006, LogLevel.Information, "Pipeline stopped: {Drained} items finished during shutdown, {Cancelled} cancelled, {Abandoned} keys left waiting, {Stuck} stuck")]
    public static partial void Stopped(ILogger logger, int drained, int cancelled, int abandoned, int stuck);

    [LoggerMessage(1007, LogLevel.Warning, "Replay {Source} line {Line} skipped: {Problem}")]
    public static partial void ReplayLineSkipped(ILogger logger, string source, long line, string problem);

    [LoggerMessage(1008, LogLevel.Error, "Queue {Stage} handler threw for {Key}")]
    public static partial void QueueHandlerThrew(ILogger logger, string stage, string key, Exception exception);

    [LoggerMessage(1009, LogLevel.Debug, "Event for {Key} ({Kind}, {Origin}) {Disposition}")]
    public static partial void EventAdmitted(ILogger logger, string key, string kind, string origin, string disposition);
}
