using Krustlet.Stages.Compile;

namespace Krustlet.Stages.Run;

/// <summary>
/// Runs containers, each on a dedicated thread so a guest's blocking native call never holds a
/// thread-pool thread. At most <see cref="Slots"/> run at once; a run waits for a free slot.
/// </summary>
public sealed class ExecutorPool : IDisposable
{
    /// <summary>The kubelet's default maxPods, the pool's default bound.</summary>
    public const int DefaultSlots = 110;

    /// <summary>Stack for a container thread: Wasmtime runs the guest on it (its own stack limit is 512 KiB).</summary>
    private const int ThreadStackSize = 4 * 1024 * 1024;

    private readonly WasmEngineHost _host;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _slots;
    private int _running;
    private int _liveThreads;

    public ExecutorPool(WasmEngineHost host, int slots = DefaultSlots, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        _host = host;
        _time = time ?? TimeProvider.System;
        Slots = slots;
        _slots = new SemaphoreSlim(slots, slots);
    }

    public int Slots { get; }

    /// <summary>Containers holding a slot now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>Container threads that have not finished.</summary>
    public int LiveThreads => Volatile.Read(ref _liveThreads);

    /// <summary>Waits for a slot, runs the container on its own thread, and returns how it ended.</summary>
    public async Task<ContainerExit> RunAsync(ContainerLaunch launch, ContainerControl control, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(launch);
        await _slots.WaitAsync(cancellationToken);
        Interlocked.Increment(ref _running);
        var done = new TaskCompletionSource<ContainerExit>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(
            () =>
            {
                ContainerExit? exit = null;
                Exception? failure = null;
                try
                {
                    exit = WasmContainerRunner.Run(_host, launch, control, _time);
                }
#pragma warning disable CA1031 // Whatever happens, the slot is freed and the caller told.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failure = ex;
                }

                // Free the slot before telling the caller, so a finished run never holds one.
                Interlocked.Decrement(ref _running);
                _slots.Release();
                Interlocked.Decrement(ref _liveThreads);
                if (failure is null)
                {
                    done.SetResult(exit!);
                }
                else
                {
                    done.SetException(failure);
                }
            },
            ThreadStackSize)
        {
            IsBackground = true,
            Name = $"wasm:{launch.Name}",
        };
        Interlocked.Increment(ref _liveThreads);
        try
        {
            thread.Start();
        }
        catch (OutOfMemoryException)
        {
            // No thread could be created: give the slot back and say so.
            Interlocked.Decrement(ref _liveThreads);
            Interlocked.Decrement(ref _running);
            _slots.Release();
            throw;
        }

        return await done.Task;
    }

    public void Dispose() => _slots.Dispose();
}
