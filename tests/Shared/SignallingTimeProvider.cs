using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Tests.Shared;

/// <summary>A fake clock that tells the test when a timer has been created, so it can advance past it.</summary>
internal sealed class SignallingTimeProvider : FakeTimeProvider
{
    private readonly Lock _lock = new();
    private TaskCompletionSource _timerCreated = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task NextTimer
    {
        get
        {
            lock (_lock)
            {
                return _timerCreated.Task;
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        TaskCompletionSource created;
        lock (_lock)
        {
            created = _timerCreated;
            _timerCreated = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        created.TrySetResult();
        return timer;
    }
}
