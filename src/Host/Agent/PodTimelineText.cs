using System.Globalization;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Agent;

/// <summary>A status report in words, one line of a pod's timeline: what <c>krustlet replay</c> prints and the pipeline page shows.</summary>
public static class PodTimelineText
{
    /// <summary>The pod phase the report stands for (Deleted for a final report).</summary>
    public static string Phase(PodReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return report.Kind switch
        {
            PodReportKind.Deleted => "Deleted",
            _ when report.Runtime is { } runtime => runtime.Phase.ToString(),
            PodReportKind.Failed when StatusReportStage.ContainerWaitingReasons.Contains(report.Reason ?? string.Empty) => "Pending",
            PodReportKind.Failed => "Failed",
            _ => "Pending",
        };
    }

    /// <summary>The reason and message, then each container's state and restarts.</summary>
    public static string Describe(PodReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var parts = new List<string>();
        if (report.Reason is not null)
        {
            parts.Add($"{report.Reason}: {report.Message}");
        }

        foreach (var container in report.Runtime?.Containers ?? [])
        {
            parts.Add(container.State switch
            {
                RunningState => $"{container.Name}=Running",
                WaitingState w => $"{container.Name}=Waiting({w.Reason})",
                TerminatedState t => string.Create(CultureInfo.InvariantCulture, $"{container.Name}=Terminated({t.Reason}, {t.ExitCode})"),
                _ => container.Name,
            } + (container.RestartCount > 0 ? string.Create(CultureInfo.InvariantCulture, $" restarts={container.RestartCount}") : string.Empty));
        }

        return string.Join("; ", parts);
    }
}
