using Krustlet.Stages.Compile;
using Krustlet.Stages.Run.Executor;
using Krustlet.Stages.Run.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Krustlet.Stages.Wasmtime.Native;

namespace Krustlet.Stages.Run;

/// <summary>
/// Runs containers. A core module runs as a guest of the executor's <see cref="GuestScheduler"/> (a few
/// threads for every guest; a sleeping guest holds none); a component, whose WASI 0.2 host cannot park,
/// runs on a dedicated thread. At most <see cref="Slots"/> run at once; a run waits for a free slot.
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
    private int _liveGuests;

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

    /// <summary>Where HTTP handler containers listen and the limits of their requests.</summary>
    public HttpHandlerOptions Http { get; init; } = new();

    /// <summary>Logs of HTTP handler runs (and their Kestrel listeners).</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    private HttpHandlerMetrics? _httpMetrics;

    private HttpHandlerMetrics HttpMetrics => LazyInitializer.EnsureInitialized(ref _httpMetrics, () => new HttpHandlerMetrics(Http.MeterFactory));

    /// <summary>Containers holding a slot now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>Component threads that have not finished (components run on a thread each).</summary>
    public int LiveThreads => Volatile.Read(ref _liveThreads);

    /// <summary>Core-module runs of this pool on the executor that have not ended (they hold no thread of their own).</summary>
    public int LiveGuests => Volatile.Read(ref _liveGuests);

    /// <summary>Waits for a slot, runs the container on its own thread, and returns how it ended.</summary>
    public async Task<ContainerExit> RunAsync(ContainerLaunch launch, ContainerControl control, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(launch);
        await _slots.WaitAsync(cancellationToken);
        Interlocked.Increment(ref _running);
        if (launch.Http is not null)
        {
            // An HTTP handler holds its slot while it serves; each request is a guest of its own.
            try
            {
                return await HandlerServer.ServeAsync(_host, launch, control, Http, HttpMetrics, LoggerFactory, _time);
            }
            finally
            {
                Interlocked.Decrement(ref _running);
                _slots.Release();
            }
        }

        if (launch.Artifact.Kind == WasmBinaryKind.CoreModule)
        {
            try
            {
                return await RunModuleAsync(launch, control);
            }
            finally
            {
                Interlocked.Decrement(ref _running);
                _slots.Release();
            }
        }

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

    private async Task<ContainerExit> RunModuleAsync(ContainerLaunch launch, ContainerControl control)
    {
        var startedAt = _time.GetUtcNow();
        using var log = new CriLogWriter(launch.LogPath, launch.LogRotation, _time);
        if (launch.Artifact.InstancePre is null)
        {
            return new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, launch.Artifact.PrepareError ?? "the module cannot be instantiated", startedAt, _time.GetUtcNow());
        }

        ModuleGuest guest;
        try
        {
            guest = new ModuleGuest(_host, launch, control, _time, log);
        }
        catch (WasmtimeNativeException ex)
        {
            // WASI could not be set up (a mount that cannot be opened) or the store refused its limits.
            return WasmContainerRunner.Outcome(ex, launch, _host, startedAt, _time);
        }

        Interlocked.Increment(ref _liveGuests);
        Task completion;
        try
        {
            (_, completion) = _host.Native.Scheduler.Start(guest);
        }
        catch
        {
            Interlocked.Decrement(ref _liveGuests);
            guest.Dispose();
            throw;
        }

        try
        {
            await completion.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!guest.Exit.IsCompletedSuccessfully)
        {
            // The scheduler stopped (the agent is going away) before the guest ended.
            return new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, "killed: the executor stopped", startedAt, _time.GetUtcNow());
        }

        finally
        {
            Interlocked.Decrement(ref _liveGuests);
        }

        return await guest.Exit.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _slots.Dispose();
        _httpMetrics?.Dispose();
    }
}
