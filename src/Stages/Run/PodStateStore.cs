using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using System.Text.Json.Serialization;

namespace Krustlet.Stages.Run;

/// <summary>How a container's run ended, as saved.</summary>
public sealed record SavedTermination(int ExitCode, string Reason, string? Message, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, string? ContainerId)
{
    public static SavedTermination From(TerminatedState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new(state.ExitCode, state.Reason, state.Message, state.StartedAt, state.FinishedAt, state.ContainerId);
    }

    public TerminatedState ToState() => new(ExitCode, Reason, Message, StartedAt, FinishedAt, ContainerId);
}

/// <summary>One container as saved.</summary>
/// <param name="Name">The container's name.</param>
/// <param name="RestartCount">Its restart count.</param>
/// <param name="LastState">How the run before the current one ended.</param>
/// <param name="Terminated">Its state when it has terminated for good.</param>
/// <param name="RunningSince">When the run under way started, if one was.</param>
/// <param name="BackingOff">Its next run is a restart not yet counted: it was waiting out CrashLoopBackOff, or about to restart on a changed definition.</param>
public sealed record SavedContainer(string Name, int RestartCount, SavedTermination? LastState, SavedTermination? Terminated, DateTimeOffset? RunningSince, bool BackingOff);

/// <summary>A pod's runtime state as saved in the data directory: enough to re-adopt it after the agent restarts.</summary>
public sealed record SavedPod(
    string Uid,
    string Namespace,
    string Name,
    DateTimeOffset StartTime,
    IReadOnlyList<SavedContainer> InitContainers,
    IReadOnlyList<SavedContainer> Containers,
    string? FailureReason = null,
    string? FailureMessage = null);

/// <summary>
/// Keeps each pod's runtime state in <c>&lt;root&gt;/&lt;uid&gt;.json</c>, rewritten (to a temporary file, then
/// renamed) at every change of its containers, so an agent that is stopped or killed re-adopts its pods
/// with their restart counts, and finished containers stay finished. Deleted with the pod.
/// </summary>
/// <remarks>
/// A rename is atomic, so a reader (or an agent killed mid-write) sees the old state or the new one,
/// never a torn file. Writes are not synced one by one (an fsync costs ~0.35 ms here, more than a warm
/// start's whole budget); the agent syncs the store's filesystem once, at shutdown
/// (<see cref="FlushToDisk"/>). A killed agent loses nothing (the page cache survives it); a machine
/// that loses power may lose the last changes, and a file it leaves torn is discarded on load.
/// </remarks>
public sealed partial class PodStateStore
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly string _root;
    private readonly ILogger _logger;

    public PodStateStore(string root, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        _root = root;
        _logger = logger ?? NullLogger.Instance;
        PrivateDirectory.Create(root);
    }

    public string Root => _root;

    /// <summary>
    /// The saved state of the pod, or null when there is none or it cannot be read (it is then discarded),
    /// or when its file is a link (not followed; saving over it fails too, and is logged).
    /// </summary>
    public SavedPod? Load(string uid)
    {
        string path;
        try
        {
            path = PathOf(uid);
        }
        catch (UnsafePathException)
        {
            return null;
        }

        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<SavedPod>(File.ReadAllBytes(path), Json) : null;
        }
        catch (JsonException ex)
        {
            Log.Discarded(_logger, path, ex.Message);
            File.Delete(path); // a torn or foreign file: the pod starts afresh
            return null;
        }
    }

    public void Save(SavedPod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var path = PathOf(pod.Uid);
        var temporary = $"{path}.{Environment.CurrentManagedThreadId}.tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(pod, Json));
        File.Move(temporary, path, overwrite: true);
    }

    public void Delete(string uid) => File.Delete(PathOf(uid));

    /// <summary>Flushes every state written so far to the disk (one <c>syncfs</c> of the store's filesystem).</summary>
    public void FlushToDisk()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var marker = Path.Combine(_root, ".sync");
        using var handle = File.OpenHandle(marker, FileMode.OpenOrCreate, FileAccess.Read);
        if (SyncFs(handle) != 0)
        {
            throw new IOException($"syncfs of {_root} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(SafeFileHandle handle);

    /// <summary>Every pod with saved state.</summary>
    public IReadOnlyList<SavedPod> List() =>
        [.. Directory.EnumerateFiles(_root, "*.json").Select(f => Load(Path.GetFileNameWithoutExtension(f))).OfType<SavedPod>()];

    private string PathOf(string uid)
    {
        ArgumentException.ThrowIfNullOrEmpty(uid);
        if (uid.IndexOfAny(['/', '\\', '.']) >= 0)
        {
            throw new ArgumentException($"'{uid}' is not a pod UID.", nameof(uid));
        }

        return DataPath.Under(_root, $"{uid}.json");
    }

    private static partial class Log
    {
        [LoggerMessage(2120, LogLevel.Warning, "Discarded the unreadable pod state {Path} ({Reason}); the pod starts afresh, its restart counts lost")]
        public static partial void Discarded(ILogger logger, string path, string reason);
    }
}
