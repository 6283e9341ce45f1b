using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.Support;

/// <summary>Keeps every report and lets the test wait for one that matches.</summary>
internal sealed class WaitingWriter : IPodReportWriter
{
    private readonly Lock _lock = new();
    private readonly List<PodReport> _reports = [];
    private readonly List<(string Uid, Func<PodReport, bool> Match, TaskCompletionSource<PodReport> Seen)> _waiters = [];

    public ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _reports.Add(report);
            foreach (var waiter in _waiters.Where(w => w.Uid == report.Uid && w.Match(report)).ToList())
            {
                waiter.Seen.TrySetResult(report);
                _waiters.Remove(waiter);
            }
        }

        return ValueTask.CompletedTask;
    }

    public Task<PodReport> WaitForAsync(string uid, Func<PodReport, bool> match, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_reports.FirstOrDefault(r => r.Uid == uid && match(r)) is { } seen)
            {
                return Task.FromResult(seen);
            }

            var waiter = new TaskCompletionSource<PodReport>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((uid, match, waiter));
            return waiter.Task.WaitAsync(cancellationToken);
        }
    }
}
