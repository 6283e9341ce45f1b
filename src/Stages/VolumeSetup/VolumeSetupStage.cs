using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>The volume stage's settings.</summary>
/// <param name="PodsRoot">Where pods' directories live: <c>&lt;PodsRoot&gt;/&lt;uid&gt;/volumes/&lt;volume&gt;</c>.</param>
public sealed record VolumeOptions(string PodsRoot)
{
    /// <summary>The kubelet's <c>syncFrequency</c> default.</summary>
    public static readonly TimeSpan DefaultSyncFrequency = TimeSpan.FromMinutes(1);

    /// <summary>hostPath volumes may only name paths under these prefixes; none allowed by default.</summary>
    public IReadOnlyList<string> AllowedHostPathPrefixes { get; init; } = [];

    /// <summary>The node's IP, for status.hostIP and status.podIP (wasm pods share the node's network).</summary>
    public string NodeIp { get; init; } = "127.0.0.1";

    /// <summary>How often emptyDir volumes with a sizeLimit are measured (the kubelet's eviction monitoring period).</summary>
    public TimeSpan SizeCheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How an emptyDir's sizeLimit is enforced.</summary>
    public EmptyDirSizeLimitMode EmptyDirSizeLimit { get; init; } = EmptyDirSizeLimitMode.Evict;

    /// <summary>
    /// How often the configMap, secret, downwardAPI and projected volumes of the pods are brought up to
    /// date with their sources (the kubelet's <c>syncFrequency</c>): each source is read again and a
    /// volume whose content changed is rewritten atomically.
    /// </summary>
    public TimeSpan SyncFrequency { get; init; } = DefaultSyncFrequency;
}

/// <summary>
/// Builds each pod's volumes under its own owner-only directory and resolves every container's
/// environment and preopened directories. Reads <see cref="PulledImages"/> (for the image's Env);
/// gives <see cref="PreparedContainers"/>. Volume types: emptyDir, configMap, secret, downwardAPI,
/// projected (configMap, secret, downwardAPI, serviceAccountToken) and hostPath under allowed prefixes.
/// A missing configMap or secret that is not optional fails with CreateContainerConfigError naming it,
/// and the pod is retried with backoff until it appears. Projected volumes (all but emptyDir and
/// hostPath) follow their sources while the pod lives: they are written again at every update of the
/// pod (the downward API) and every <see cref="VolumeOptions.SyncFrequency"/> (configMaps, secrets,
/// tokens near their expiry), atomically (<see cref="AtomicVolumeWriter"/>); subPath mounts of them are
/// copies made when the pod's volumes were first set up, and are not updated, as in Kubernetes.
/// An emptyDir over its sizeLimit gets the pod evicted. Teardown removes the pod's directory.
/// </summary>
public sealed partial class VolumeSetupStage : IStage<V1Pod>, IDisposable
{
    private const int DefaultMode = 0b110_100_100; // 0644, as Kubernetes

    private readonly IPodResources _resources;
    private readonly VolumeOptions _options;
    private readonly DownwardApi _downward;
    private readonly EnvironmentResolver _environment;
    private readonly PodRetry _retry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, IReadOnlyList<SizeLimit>> _sizeLimits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _evicted = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PodVolumes> _pods = new(StringComparer.Ordinal);
    private readonly Lock _timerLock = new();
    private readonly IPodStageContext _context;
    private ITimer? _sizeChecks;
    private ITimer? _syncs;
    private int _syncing;

    private sealed record SizeLimit(string Volume, string Path, long Bytes, string Text);

    private sealed record IssuedToken(string Token, DateTimeOffset RefreshAt);

    /// <summary>What the stage keeps of a pod while it lives: its latest version, for the syncs; the tokens issued for it.</summary>
    private sealed class PodVolumes
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public V1Pod? Pod { get; set; }

        public bool Removed { get; set; }

        public Dictionary<(string Volume, string Path), IssuedToken> Tokens { get; } = [];
    }

    /// <param name="resources">Where configMaps, secrets and service-account tokens are read.</param>
    /// <param name="options">The stage's settings.</param>
    /// <param name="node">The node's allocatable resources, for the downward API.</param>
    /// <param name="context">The pipeline: re-entry when a missing configMap or secret may have appeared, eviction of a pod over its emptyDir sizeLimit.</param>
    /// <param name="backoff">The retry delays.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Logging.</param>
    public VolumeSetupStage(IPodResources resources, VolumeOptions options, Admission.NodeAllocatable node, IPodStageContext context, Run.RestartBackoffOptions? backoff = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(resources);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        _resources = resources;
        _options = options;
        _context = context;
        _downward = new DownwardApi(node, options.NodeIp);
        _environment = new EnvironmentResolver(resources, _downward);
        _retry = new PodRetry(context.Reenter, backoff, time);
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        Directory.CreateDirectory(options.PodsRoot);
    }

    public string Name => StageNames.VolumeSetup;

    /// <summary>Raised after each sync of the projected volumes (<see cref="SyncAsync"/>) with how many volumes it rewrote.</summary>
    internal event Action<int>? Synced;

    public void Dispose()
    {
        lock (_timerLock)
        {
            _sizeChecks?.Dispose();
            _sizeChecks = null;
            _syncs?.Dispose();
            _syncs = null;
        }
    }

    /// <summary>Measures every emptyDir with a sizeLimit now and evicts the pods over it; returns how many were evicted.</summary>
    public async Task<int> CheckSizesAsync()
    {
        var evicted = 0;
        foreach (var uid in _sizeLimits.Keys)
        {
            if (OverLimit(uid) is { } message)
            {
                await _context.EvictAsync(uid, message);
                evicted++;
            }
        }

        return evicted;
    }

    /// <summary>
    /// Measures the pod's emptyDirs that have a sizeLimit; the first over its limit marks the pod evicted
    /// and its eviction message is returned, null otherwise (or when the pod was evicted already).
    /// </summary>
    internal string? OverLimit(string uid)
    {
        if (!_sizeLimits.TryGetValue(uid, out var limits) || _evicted.ContainsKey(uid))
        {
            return null;
        }

        foreach (var limit in limits)
        {
            long used;
            try
            {
                used = Usage(limit.Path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // the pod is being torn down, or the directory changed under us: measure next time
            }

            if (used > limit.Bytes && _evicted.TryAdd(uid, true))
            {
                var message = $"Usage of EmptyDir volume \"{limit.Volume}\" exceeds the limit \"{limit.Text}\".";
                Log.Evicting(_logger, uid, limit.Volume, used, limit.Text);
                return message;
            }
        }

        return null;
    }

    private static long Usage(string path) =>
        Directory.Exists(path)
            ? new DirectoryInfo(path).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true }).Sum(f => f.Length)
            : 0;

    private void TrackSizeLimits(string uid, IReadOnlyList<SizeLimit> limits)
    {
        if (limits.Count == 0)
        {
            _sizeLimits.TryRemove(uid, out _);
            return;
        }

        _sizeLimits[uid] = limits;
        lock (_timerLock)
        {
            _sizeChecks ??= _time.CreateTimer(_ => _ = CheckSizesAsync(), null, _options.SizeCheckInterval, _options.SizeCheckInterval);
        }
    }

    private void EnsureSyncTimer()
    {
        lock (_timerLock)
        {
            _syncs ??= _time.CreateTimer(_ => _ = SyncOnTimerAsync(), null, _options.SyncFrequency, _options.SyncFrequency);
        }
    }

    private async Task SyncOnTimerAsync()
    {
        if (Interlocked.Exchange(ref _syncing, 1) == 1)
        {
            return; // the last sync is still going
        }

        try
        {
            await SyncAsync(CancellationToken.None);
        }
        finally
        {
            Volatile.Write(ref _syncing, 0);
        }
    }

    /// <summary>
    /// Reads the sources of every pod's configMap, secret, downwardAPI and projected volumes again and
    /// rewrites, atomically, each volume whose content changed; returns how many were rewritten. A
    /// source that cannot be read now (an API error, a required object or key that is gone) leaves its
    /// volume as it was, as the kubelet does; an optional one that is gone loses its files.
    /// </summary>
    public async Task<int> SyncAsync(CancellationToken cancellationToken)
    {
        var updated = 0;
        foreach (var (uid, state) in _pods)
        {
            await state.Gate.WaitAsync(cancellationToken);
            try
            {
                if (state.Removed || state.Pod is not { } pod)
                {
                    continue;
                }

                foreach (var volume in pod.Spec?.Volumes ?? [])
                {
                    if (volume.EmptyDir is not null || volume.HostPath is not null)
                    {
                        continue;
                    }

                    try
                    {
                        if (await ProjectAsync(pod, uid, volume, state, cancellationToken))
                        {
                            updated++;
                            Log.VolumeUpdated(_logger, uid, volume.Name);
                        }
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        throw;
                    }
#pragma warning disable CA1031 // One volume's source failing keeps that volume as it was; the others and the next sync go on.
                    catch (Exception ex)
#pragma warning restore CA1031
                    {
                        Log.VolumeNotUpdated(_logger, uid, volume.Name, ex.Message);
                    }
                }
            }
            finally
            {
                state.Gate.Release();
            }
        }

        Synced?.Invoke(updated);
        return updated;
    }

    /// <summary>The directory of a pod's volume.</summary>
    /// <exception cref="UnsafePathException">The UID or the volume's name would lead outside the pods directory.</exception>
    public string VolumePath(string uid, string volume) => DataPath.Under(_options.PodsRoot, uid, "volumes", volume);

    public async ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var pod = item.Value!;
        var state = _pods.GetOrAdd(item.Key, _ => new PodVolumes());
        await state.Gate.WaitAsync(cancellationToken);
        try
        {
            var podDirectory = DataPath.Under(_options.PodsRoot, item.Key);
            PrivateDirectory.Create(podDirectory);
            PrivateDirectory.Create(Path.Combine(podDirectory, "volumes"));
            var volumes = new Dictionary<string, (string Path, bool AlwaysReadOnly)>(StringComparer.Ordinal);
            foreach (var volume in pod.Spec?.Volumes ?? [])
            {
                volumes[volume.Name] = await MaterializeAsync(pod, item.Key, volume, state, cancellationToken);
            }

            var images = item.Get<PulledImages>();
            var prepared = new Dictionary<string, PreparedContainer>(StringComparer.Ordinal);
            foreach (var container in PodContainers.All(pod))
            {
                var defaults = images?.ByContainer.GetValueOrDefault(container.Name)?.Defaults ?? ImageDefaults.None;
                var env = await _environment.ResolveAsync(pod, container, defaults, cancellationToken);
                prepared[container.Name] = new PreparedContainer(env, [.. Mounts(item.Key, container, volumes)]);
            }

            var uid = item.Key;
            item.Set(new PreparedContainers(prepared) { OverLimit = () => OverLimit(uid) });
            TrackSizeLimits(item.Key, [.. (pod.Spec?.Volumes ?? [])
                .Where(v => v.EmptyDir?.SizeLimit is not null)
                .Select(v => new SizeLimit(v.Name, volumes[v.Name].Path, (long)v.EmptyDir.SizeLimit.ToDecimal(), v.EmptyDir.SizeLimit.ToString()))]);
            state.Pod = pod; // from now on the syncs keep its projected volumes up to date
            _retry.Clear(item.Key, "config");
            return StageOutcome.Continue;
        }
        catch (PodConfigException ex)
        {
            _retry.Schedule(item.Key, "config", "retrying a missing or invalid configuration");
            return StageOutcome.Fail(KubeletReasons.CreateContainerConfigError, ex.Message);
        }
        catch (UnsafePathException ex)
        {
            return StageOutcome.Fail(KubeletReasons.CreateContainerConfigError, $"volumes: {ex.Message}");
        }
        finally
        {
            state.Gate.Release();
            if (state.Pod?.Spec?.Volumes?.Any(v => v.EmptyDir is null && v.HostPath is null) == true)
            {
                EnsureSyncTimer(); // the first pod with a projected volume starts the syncs
            }
        }
    }

    public async ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        _retry.ClearPod(item.Key);
        _sizeLimits.TryRemove(item.Key, out _);
        _evicted.TryRemove(item.Key, out _);
        if (_pods.TryRemove(item.Key, out var state))
        {
            await state.Gate.WaitAsync(cancellationToken); // a sync writing the pod's volumes finishes first
            state.Removed = true;
            state.Gate.Release();
        }

        var podDirectory = DataPath.TryUnder(_options.PodsRoot, item.Key); // null: a UID no directory was made for
        if (podDirectory is not null && Directory.Exists(podDirectory))
        {
            // Mounts (size-limited emptyDirs) are unmounted first; recursive deletion removes links themselves, never what they point to.
            EmptyDirLimits.RemoveDirectory(podDirectory);
        }

        return StageOutcome.Continue;
    }

    private async Task<(string Path, bool AlwaysReadOnly)> MaterializeAsync(V1Pod pod, string uid, V1Volume volume, PodVolumes state, CancellationToken cancellationToken)
    {
        VolumeFiles.Validate(volume.Name, "volume name");
        var root = VolumePath(uid, volume.Name);
        var what = $"volume {volume.Name}";

        if (volume.EmptyDir is not null)
        {
            PrivateDirectory.Create(root);
            if (volume.EmptyDir.SizeLimit is { } limit && _options.EmptyDirSizeLimit == EmptyDirSizeLimitMode.Tmpfs)
            {
                EmptyDirLimits.MountTmpfs(root, (long)limit.ToDecimal(), what);
            }

            return (root, false);
        }

        if (volume.HostPath is { } hostPath)
        {
            return (HostPath(hostPath, what), false);
        }

        await ProjectAsync(pod, uid, volume, state, cancellationToken);
        return (root, true);
    }

    /// <summary>Writes a volume projected from API objects (read-only to the guest) if its content changed; true when it did.</summary>
    private async Task<bool> ProjectAsync(V1Pod pod, string uid, V1Volume volume, PodVolumes state, CancellationToken cancellationToken)
    {
        var root = VolumePath(uid, volume.Name);
        var what = $"volume {volume.Name}";
        var ns = pod.Namespace();
        var files = new List<(string Path, byte[] Content, int Mode)>();
        if (volume.ConfigMap is { } configMap)
        {
            await AddConfigMapAsync(files, ns, configMap.Name, configMap.Items, configMap.Optional, VolumeFiles.Mode(configMap.DefaultMode, DefaultMode, what), what, cancellationToken);
        }
        else if (volume.Secret is { } secret)
        {
            await AddSecretAsync(files, ns, secret.SecretName, secret.Items, secret.Optional, VolumeFiles.Mode(secret.DefaultMode, DefaultMode, what), what, cancellationToken);
        }
        else if (volume.DownwardAPI is { } downward)
        {
            AddDownward(files, pod, downward.Items, VolumeFiles.Mode(downward.DefaultMode, DefaultMode, what), what);
        }
        else if (volume.Projected is { } projected)
        {
            var mode = VolumeFiles.Mode(projected.DefaultMode, DefaultMode, what);
            foreach (var source in projected.Sources ?? [])
            {
                if (source.ConfigMap is { } c)
                {
                    await AddConfigMapAsync(files, ns, c.Name, c.Items, c.Optional, mode, what, cancellationToken);
                }
                else if (source.Secret is { } s)
                {
                    await AddSecretAsync(files, ns, s.Name, s.Items, s.Optional, mode, what, cancellationToken);
                }
                else if (source.DownwardAPI is { } d)
                {
                    AddDownward(files, pod, d.Items, mode, what);
                }
                else if (source.ServiceAccountToken is { } token)
                {
                    var expiration = token.ExpirationSeconds ?? 3600;
                    if (expiration < 600)
                    {
                        throw new PodConfigException($"{what}: serviceAccountToken expirationSeconds must be at least 600 (got {expiration})");
                    }

                    files.Add((token.Path, Encoding.UTF8.GetBytes(await TokenAsync(pod, volume.Name, token, expiration, state, cancellationToken)), mode));
                }
            }
        }
        else
        {
            throw new PodConfigException($"{what}: this volume type is not supported on a WebAssembly node (supported: emptyDir, configMap, secret, downwardAPI, projected, hostPath)");
        }

        // Validate every path before writing any file.
        foreach (var file in files)
        {
            VolumeFiles.Validate(file.Path, what);
        }

        return AtomicVolumeWriter.Write(root, [.. files.Select(f => new VolumeFile(f.Path, f.Content, f.Mode))], _time, what);
    }

    // As the kubelet's token manager: a token is requested again once 80 % of its lifetime has passed, not at every sync.
    private async Task<string> TokenAsync(V1Pod pod, string volume, V1ServiceAccountTokenProjection projection, long expiration, PodVolumes state, CancellationToken cancellationToken)
    {
        var key = (volume, projection.Path);
        var now = _time.GetUtcNow();
        if (state.Tokens.TryGetValue(key, out var issued) && now < issued.RefreshAt)
        {
            return issued.Token;
        }

        var token = await _resources.RequestTokenAsync(pod, projection.Audience, expiration, cancellationToken);
        state.Tokens[key] = new IssuedToken(token, now.AddSeconds(expiration * 0.8));
        return token;
    }

    private async Task AddConfigMapAsync(List<(string, byte[], int)> files, string ns, string name, IList<V1KeyToPath>? items, bool? optional, int mode, string what, CancellationToken cancellationToken)
    {
        var map = await _resources.GetConfigMapAsync(ns, name, cancellationToken);
        if (map is null)
        {
            if (optional == true)
            {
                return;
            }

            throw new PodConfigException($"configmap \"{name}\" not found");
        }

        var data = (map.Data ?? new Dictionary<string, string>()).ToDictionary(p => p.Key, p => Encoding.UTF8.GetBytes(p.Value), StringComparer.Ordinal);
        foreach (var (key, value) in map.BinaryData ?? new Dictionary<string, byte[]>())
        {
            data[key] = value;
        }

        AddItems(files, data, items, optional, mode, $"{what}: configmap \"{name}\"");
    }

    private async Task AddSecretAsync(List<(string, byte[], int)> files, string ns, string name, IList<V1KeyToPath>? items, bool? optional, int mode, string what, CancellationToken cancellationToken)
    {
        var secret = await _resources.GetAsync(ns, name, cancellationToken);
        if (secret is null)
        {
            if (optional == true)
            {
                return;
            }

            throw new PodConfigException($"secret \"{name}\" not found");
        }

        var data = (secret.Data ?? new Dictionary<string, byte[]>()).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        foreach (var (key, value) in secret.StringData ?? new Dictionary<string, string>())
        {
            data[key] = Encoding.UTF8.GetBytes(value);
        }

        AddItems(files, data, items, optional, mode, $"{what}: secret \"{name}\"");
    }

    private static void AddItems(List<(string, byte[], int)> files, Dictionary<string, byte[]> data, IList<V1KeyToPath>? items, bool? optional, int mode, string what)
    {
        if (items is null || items.Count == 0)
        {
            files.AddRange(data.Select(p => (p.Key, p.Value, mode)));
            return;
        }

        foreach (var item in items)
        {
            if (!data.TryGetValue(item.Key, out var value))
            {
                if (optional == true)
                {
                    continue;
                }

                throw new PodConfigException($"{what} has no key \"{item.Key}\"");
            }

            files.Add((item.Path, value, VolumeFiles.Mode(item.Mode, mode, what)));
        }
    }

    private void AddDownward(List<(string, byte[], int)> files, V1Pod pod, IList<V1DownwardAPIVolumeFile>? items, int mode, string what)
    {
        foreach (var item in items ?? [])
        {
            string value;
            if (item.FieldRef is { } field)
            {
                value = _downward.Field(pod, field.FieldPath, forVolume: true) ?? string.Empty;
            }
            else if (item.ResourceFieldRef is { } resource)
            {
                value = _downward.Resource(pod, resource.ContainerName ?? string.Empty, resource.Resource, resource.Divisor);
            }
            else
            {
                throw new PodConfigException($"{what}: downwardAPI item {item.Path} has neither fieldRef nor resourceFieldRef");
            }

            files.Add((item.Path, Encoding.UTF8.GetBytes(value), VolumeFiles.Mode(item.Mode, mode, what)));
        }
    }

    private string HostPath(V1HostPathVolumeSource source, string what)
    {
        var path = Path.GetFullPath(source.Path);
        var allowed = _options.AllowedHostPathPrefixes.Select(p => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p)))
            .Any(prefix => path == prefix || path.StartsWith(prefix + Path.DirectorySeparatorChar, StringComparison.Ordinal));
        if (!allowed)
        {
            throw new PodConfigException($"{what}: hostPath {source.Path} is not under an allowed prefix ({(_options.AllowedHostPathPrefixes.Count == 0 ? "none are allowed" : string.Join(", ", _options.AllowedHostPathPrefixes))})");
        }

        switch (source.Type ?? string.Empty)
        {
            case "":
            case "Directory" when Directory.Exists(path):
                break;
            case "Directory":
                throw new PodConfigException($"{what}: hostPath type check failed: {source.Path} is not a directory");
            case "DirectoryOrCreate":
                if (File.Exists(path))
                {
                    throw new PodConfigException($"{what}: hostPath type check failed: {source.Path} is a file, not a directory");
                }

                Directory.CreateDirectory(path);
                break;
            case "File" or "FileOrCreate" or "Socket" or "CharDevice" or "BlockDevice":
                throw new PodConfigException($"{what}: hostPath type {source.Type}: WASI preopens only directories; mount the directory that holds the file");
            default:
                throw new PodConfigException($"{what}: unknown hostPath type {source.Type}");
        }

        if (!Directory.Exists(path))
        {
            throw new PodConfigException($"{what}: hostPath {source.Path} does not exist");
        }

        return path;
    }

    private IEnumerable<Mount> Mounts(string uid, V1Container container, Dictionary<string, (string Path, bool AlwaysReadOnly)> volumes)
    {
        var index = -1;
        foreach (var mount in container.VolumeMounts ?? [])
        {
            index++;
            var what = $"container {container.Name}: volumeMount {mount.Name}";
            if (!volumes.TryGetValue(mount.Name, out var volume))
            {
                throw new PodConfigException($"{what}: the pod has no volume named \"{mount.Name}\"");
            }

            if (!mount.MountPath.StartsWith('/'))
            {
                throw new PodConfigException($"{what}: mountPath \"{mount.MountPath}\" must be absolute");
            }

            var host = volume.Path;
            if (!string.IsNullOrEmpty(mount.SubPath))
            {
                var parts = VolumeFiles.Validate(mount.SubPath, $"{what}: subPath");
                host = volume.AlwaysReadOnly
                    ? SubPathCopy(uid, mount.Name, container.Name, index, volume.Path, parts, mount.SubPath, what)
                    : VolumeFiles.EnsureDirectory(volume.Path, parts, $"{what}: subPath");
                if (!Directory.Exists(host) || new DirectoryInfo(host).LinkTarget is not null)
                {
                    throw new PodConfigException($"{what}: subPath \"{mount.SubPath}\" is not a directory in the volume (WASI preopens only directories)");
                }
            }

            yield return new Mount(host, mount.MountPath, volume.AlwaysReadOnly || mount.ReadOnlyProperty == true);
        }
    }

    /// <summary>
    /// A subPath of a projected volume, as the kubelet's bind mount of it: fixed when the container first
    /// gets it (a copy of the directory in the payload current then, under
    /// <c>&lt;pod&gt;/volume-subpaths/&lt;volume&gt;/&lt;container&gt;/&lt;index&gt;</c>), so later updates of the
    /// volume do not reach it.
    /// </summary>
    private string SubPathCopy(string uid, string volume, string container, int index, string root, string[] parts, string subPath, string what)
    {
        var copy = DataPath.Under(_options.PodsRoot, uid, "volume-subpaths", volume, container, index.ToString(CultureInfo.InvariantCulture));
        if (Directory.Exists(copy))
        {
            return copy;
        }

        var payload = AtomicVolumeWriter.CurrentPayloadDirectory(root);
        var source = payload is null ? null : Path.Combine([root, payload, .. parts]);
        if (source is null || !Directory.Exists(source) || new DirectoryInfo(source).LinkTarget is not null)
        {
            throw new PodConfigException($"{what}: subPath \"{subPath}\" is not a directory in the volume (WASI preopens only directories)");
        }

        var temporary = copy + ".tmp";
        if (Directory.Exists(temporary))
        {
            Directory.Delete(temporary, recursive: true);
        }

        PrivateDirectory.Create(Path.GetDirectoryName(copy)!);
        CopyDirectory(source, temporary);
        Directory.Move(temporary, copy);
        return copy;
    }

    // The payload holds only the agent's own directories and files.
    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(to, File.GetUnixFileMode(from));
        }

        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var target = Path.Combine(to, entry.Name);
            if (entry.LinkTarget is not null)
            {
                continue;
            }

            if (entry is DirectoryInfo directory)
            {
                CopyDirectory(directory.FullName, target);
            }
            else
            {
                File.Copy(entry.FullName, target);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2350, LogLevel.Information, "Volume {Volume} of pod {Uid} was updated from its source")]
        public static partial void VolumeUpdated(ILogger logger, string uid, string volume);

        [LoggerMessage(2351, LogLevel.Warning, "Volume {Volume} of pod {Uid} was left as it was: {Reason}")]
        public static partial void VolumeNotUpdated(ILogger logger, string uid, string volume, string reason);

        [LoggerMessage(2352, LogLevel.Warning, "Pod {Uid} is evicted: its emptyDir {Volume} holds {Used} bytes, over its sizeLimit {Limit}")]
        public static partial void Evicting(ILogger logger, string uid, string volume, long used, string limit);
    }
}
