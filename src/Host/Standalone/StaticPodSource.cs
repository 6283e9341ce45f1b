using System.Collections.Frozen;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using YamlDotNet.Core;

namespace Krustlet.Host.Standalone;

/// <summary>
/// The kubelet's static pods (<c>--pod-manifest-path</c>): the <c>*.yaml</c>, <c>*.yml</c> and
/// <c>*.json</c> files at the top of a directory (hidden files and subdirectories are ignored), each
/// holding at most one Pod and any number of ConfigMaps and Secrets (one or more YAML documents), which
/// feed <see cref="Resources"/>.
/// <para>
/// As the kubelet does for static pods, a pod is named <c>&lt;name&gt;-&lt;nodeName&gt;</c>, put in
/// namespace <c>default</c> when it names none, bound to the node, annotated
/// <c>kubernetes.io/config.source: file</c> and <c>kubernetes.io/config.hash</c>, and given a UID derived
/// from the file's name and content and the node name, so an agent restarted over an unchanged file sees
/// the same UID.
/// </para>
/// <para>
/// <see cref="ReadAsync"/> scans once (an Upsert per valid pod), then rescans when a file watcher sees a
/// change, when <see cref="RequestRescan"/> is called, and every <see cref="RescanInterval"/>. A rescan
/// diffs against what was emitted: a new file is an Upsert; a changed one (new UID) a Delete of the old
/// UID then an Upsert; a removed one a Delete with the last known pod. A file that is invalid (unparsable,
/// no Pod, no containers, a name another file already uses) fails alone: it is logged and listed in
/// <see cref="Problems"/>, and a file that turns invalid keeps its last good pod and objects.
/// </para>
/// </summary>
public sealed partial class StaticPodSource : IEventSource<V1Pod>
{
    public const string ConfigSourceAnnotation = "kubernetes.io/config.source";
    public const string ConfigHashAnnotation = "kubernetes.io/config.hash";

    private static readonly string[] Extensions = [".yaml", ".yml", ".json"];
    private static readonly Dictionary<string, Type> Kinds = new(StringComparer.Ordinal)
    {
        ["v1/Pod"] = typeof(V1Pod),
        ["v1/ConfigMap"] = typeof(V1ConfigMap),
        ["v1/Secret"] = typeof(V1Secret),
    };

    private readonly string _directory;
    private readonly string _nodeName;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Dictionary<string, FileState> _emitted = new(StringComparer.Ordinal);
    private volatile FrozenDictionary<string, string> _problems = FrozenDictionary<string, string>.Empty;
    private volatile IReadOnlyList<V1Pod> _pods = [];
    private long _scans;

    /// <param name="directory">The manifest directory (it may not exist yet: it is then empty).</param>
    /// <param name="nodeName">The node's name: the pods' suffix and <c>spec.nodeName</c>.</param>
    /// <param name="time">The clock of the periodic rescan.</param>
    /// <param name="logger">Where problems with files are logged.</param>
    public StaticPodSource(string directory, string nodeName, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        _directory = Path.GetFullPath(directory);
        _nodeName = nodeName;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    public string Name => "file";

    public string Directory => _directory;

    /// <summary>The kubelet's default fileCheckFrequency.</summary>
    public static readonly TimeSpan DefaultRescanInterval = TimeSpan.FromSeconds(20);

    /// <summary>How often the directory is rescanned besides the watcher's triggers (the kubelet's fileCheckFrequency).</summary>
    public TimeSpan RescanInterval { get; init; } = DefaultRescanInterval;

    /// <summary>Whether a <see cref="FileSystemWatcher"/> triggers rescans (the periodic rescan always runs).</summary>
    public bool WatchFiles { get; init; } = true;

    /// <summary>The ConfigMaps and Secrets of the directory, for the volume stage.</summary>
    public StaticPodResources Resources { get; } = new();

    /// <summary>The files that are invalid now, by file name, with what is wrong.</summary>
    public IReadOnlyDictionary<string, string> Problems => _problems;

    /// <summary>The pods emitted and not deleted, as last emitted.</summary>
    public IReadOnlyList<V1Pod> Pods => _pods;

    /// <summary>How many scans have completed.</summary>
    public long Scans => Interlocked.Read(ref _scans);

    /// <summary>Raised after each scan, once its events have been taken by the reader.</summary>
    public event EventHandler? Scanned;

    /// <summary>Asks for a rescan soon (several requests before it runs make one rescan).</summary>
    public void RequestRescan() => _wake.Writer.TryWrite(true);

    public async IAsyncEnumerable<PipelineEvent<V1Pod>> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var watcher = WatchFiles && System.IO.Directory.Exists(_directory) ? StartWatcher() : null;
        using var timer = _time.CreateTimer(_ => RequestRescan(), null, RescanInterval, RescanInterval);
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var evt in Scan())
            {
                yield return evt;
            }

            Interlocked.Increment(ref _scans);
            Scanned?.Invoke(this, EventArgs.Empty);
            await _wake.Reader.ReadAsync(cancellationToken);
        }
    }

    private FileSystemWatcher StartWatcher()
    {
        var watcher = new FileSystemWatcher(_directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
        watcher.Changed += (_, _) => RequestRescan();
        watcher.Created += (_, _) => RequestRescan();
        watcher.Deleted += (_, _) => RequestRescan();
        watcher.Renamed += (_, _) => RequestRescan();
        watcher.Error += (_, _) => RequestRescan(); // an overflowed buffer lost events: the rescan finds them
        watcher.EnableRaisingEvents = true;
        return watcher;
    }

    /// <summary>What one file contributed when it was last valid.</summary>
    private sealed record FileState(V1Pod? Pod, IReadOnlyList<V1ConfigMap> ConfigMaps, IReadOnlyList<V1Secret> Secrets);

    private List<PipelineEvent<V1Pod>> Scan()
    {
        var parsed = new SortedDictionary<string, (FileState? State, string? Problem)>(StringComparer.Ordinal);
        foreach (var path in ManifestFiles())
        {
            var file = Path.GetFileName(path);
            try
            {
                parsed[file] = Parse(file, File.ReadAllBytes(path));
            }
            catch (IOException ex)
            {
                parsed[file] = (null, $"cannot read: {ex.Message}");
            }
            catch (UnauthorizedAccessException ex)
            {
                parsed[file] = (null, $"cannot read: {ex.Message}");
            }
        }

        // Who holds each name: files that turned invalid keep what they had; then valid files, a file
        // already holding its name first, then by file name. A later claimant of a held name is invalid.
        var problems = new Dictionary<string, string>(StringComparer.Ordinal);
        var desired = new Dictionary<string, FileState>(StringComparer.Ordinal);
        var claimed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, (_, problem)) in parsed.Where(p => p.Value.Problem is not null))
        {
            problems[file] = problem!;
            if (_emitted.TryGetValue(file, out var kept))
            {
                desired[file] = kept;
                foreach (var name in Names(kept))
                {
                    claimed.TryAdd(name, file);
                }
            }
        }

        var valid = parsed.Where(p => p.Value.State is not null)
            .OrderBy(p => _emitted.TryGetValue(p.Key, out var old) && Names(old).Intersect(Names(p.Value.State!)).Any() ? 0 : 1)
            .ThenBy(p => p.Key, StringComparer.Ordinal);
        foreach (var (file, (state, _)) in valid)
        {
            var taken = Names(state!).FirstOrDefault(n => claimed.TryGetValue(n, out var holder) && holder != file);
            if (taken is not null)
            {
                problems[file] = $"{taken} is already defined by {claimed[taken]}";
                if (_emitted.TryGetValue(file, out var kept))
                {
                    desired[file] = kept;
                }

                continue;
            }

            desired[file] = state!;
            foreach (var name in Names(state!))
            {
                claimed[name] = file;
            }
        }

        foreach (var (file, message) in problems)
        {
            if (!_problems.TryGetValue(file, out var before) || before != message)
            {
                Log.InvalidManifest(_logger, Path.Combine(_directory, file), message);
            }
        }

        _problems = problems.ToFrozenDictionary(StringComparer.Ordinal);
        Resources.Replace(desired.Values.SelectMany(s => s.ConfigMaps), desired.Values.SelectMany(s => s.Secrets));

        var events = new List<PipelineEvent<V1Pod>>();
        var upserts = new List<PipelineEvent<V1Pod>>();
        foreach (var (file, old) in _emitted)
        {
            var now = desired.GetValueOrDefault(file)?.Pod;
            if (old.Pod is not null && now?.Metadata.Uid != old.Pod.Metadata.Uid)
            {
                events.Add(PipelineEvent<V1Pod>.Delete(old.Pod.Metadata.Uid, old.Pod));
            }
        }

        foreach (var (file, state) in desired)
        {
            if (state.Pod is not null && _emitted.GetValueOrDefault(file)?.Pod?.Metadata.Uid != state.Pod.Metadata.Uid)
            {
                upserts.Add(PipelineEvent<V1Pod>.Upsert(state.Pod.Metadata.Uid, state.Pod));
            }
        }

        _emitted.Clear();
        foreach (var (file, state) in desired)
        {
            _emitted[file] = state;
        }

        _pods = [.. desired.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => d.Value.Pod).OfType<V1Pod>()];
        events.AddRange(upserts);
        return events;
    }

    private IEnumerable<string> ManifestFiles()
    {
        if (!System.IO.Directory.Exists(_directory))
        {
            return [];
        }

        return System.IO.Directory.EnumerateFiles(_directory)
            .Where(p => !Path.GetFileName(p).StartsWith('.') && Extensions.Contains(Path.GetExtension(p), StringComparer.OrdinalIgnoreCase));
    }

    private static IEnumerable<string> Names(FileState state) =>
        (state.Pod is null ? [] : new[] { $"pod {state.Pod.Metadata.NamespaceProperty}/{state.Pod.Metadata.Name}" })
            .Concat(state.ConfigMaps.Select(c => $"configmap {c.Metadata.NamespaceProperty}/{c.Metadata.Name}"))
            .Concat(state.Secrets.Select(s => $"secret {s.Metadata.NamespaceProperty}/{s.Metadata.Name}"));

    /// <summary>
    /// Says which document has no apiVersion or kind, or one this agent does not take, before the
    /// Kubernetes deserializer would say it with a dictionary's exception text. Aliases are not
    /// expanded here (a billion-laughs file costs nothing); a YAML error surfaces with its line and column.
    /// </summary>
    private static string? KindProblem(string text)
    {
        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        stream.Load(new StringReader(text));
        for (var i = 0; i < stream.Documents.Count; i++)
        {
            var where = stream.Documents.Count > 1 ? $"document {i + 1}: " : string.Empty;
            if (stream.Documents[i].RootNode is YamlDotNet.RepresentationModel.YamlScalarNode { Value: null or "" })
            {
                continue; // an empty document (a trailing ---)
            }

            if (stream.Documents[i].RootNode is not YamlDotNet.RepresentationModel.YamlMappingNode root)
            {
                return $"{where}not an object (a manifest is a mapping with apiVersion, kind, metadata)";
            }

            string? Field(string name) =>
                root.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode(name), out var value) && value is YamlDotNet.RepresentationModel.YamlScalarNode { Value: { Length: > 0 } scalar } ? scalar : null;
            var apiVersion = Field("apiVersion");
            var kind = Field("kind");
            if (apiVersion is null || kind is null)
            {
                return $"{where}{(apiVersion is null ? "apiVersion" : "kind")} is not set (line {root.Start.Line})";
            }

            if (!Kinds.ContainsKey($"{apiVersion}/{kind}"))
            {
                return $"{where}{kind} ({apiVersion}) is not a kind a static pod manifest holds: one v1 Pod, with v1 ConfigMaps and Secrets it uses";
            }

            if (ManifestYamlProblems.ExcessiveAliasing(stream.Documents[i]) is { } aliasing)
            {
                return where + aliasing;
            }
        }

        return null;
    }

    private (FileState? State, string? Problem) Parse(string file, byte[] content)
    {
        List<object> objects;
        try
        {
            var text = System.Text.Encoding.UTF8.GetString(content);
            if (KindProblem(text) is { } kind)
            {
                return (null, kind);
            }

            objects = KubernetesYaml.LoadAllFromString(text, Kinds);
        }
        catch (YamlException ex)
        {
            return (null, ManifestYamlProblems.Describe(System.Text.Encoding.UTF8.GetString(content), ex));
        }
        catch (Exception ex) when (ex is ArgumentException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return (null, ex.Message);
        }

        V1Pod? pod = null;
        var configMaps = new List<V1ConfigMap>();
        var secrets = new List<V1Secret>();
        for (var i = 0; i < objects.Count; i++)
        {
            var where = objects.Count > 1 ? $"document {i + 1}: " : string.Empty;
            switch (objects[i])
            {
                case V1Pod p when pod is not null:
                    return (null, $"{where}a second Pod ({p.Metadata?.Name}); a file holds one Pod");
                case V1Pod p:
                    if (Validate(p) is { } invalid)
                    {
                        return (null, $"{where}{invalid}");
                    }

                    pod = p;
                    break;
                case V1ConfigMap c when string.IsNullOrEmpty(c.Metadata?.Name):
                    return (null, $"{where}a ConfigMap without metadata.name");
                case V1ConfigMap c:
                    c.Metadata.NamespaceProperty ??= ObjectMetaExtensions.DefaultNamespace;
                    configMaps.Add(c);
                    break;
                case V1Secret s when string.IsNullOrEmpty(s.Metadata?.Name):
                    return (null, $"{where}a Secret without metadata.name");
                case V1Secret s:
                    s.Metadata.NamespaceProperty ??= ObjectMetaExtensions.DefaultNamespace;
                    if (s.StringData is { Count: > 0 })
                    {
                        s.Data ??= new Dictionary<string, byte[]>();
                        foreach (var (key, value) in s.StringData)
                        {
                            s.Data[key] = System.Text.Encoding.UTF8.GetBytes(value);
                        }

                        s.StringData = null;
                    }

                    secrets.Add(s);
                    break;
                case IKubernetesObject other:
                    return (null, $"{where}{other.ApiVersion}/{other.Kind} is not a Pod, ConfigMap or Secret");
                default:
                    return (null, $"{where}not a Pod, ConfigMap or Secret ({objects[i]?.GetType().Name ?? "empty"})");
            }
        }

        if (pod is null && configMaps.Count == 0 && secrets.Count == 0)
        {
            return (null, "holds no Pod, ConfigMap or Secret");
        }

        if (pod is not null)
        {
            var hash = SHA256.HashData([.. System.Text.Encoding.UTF8.GetBytes($"{file}\n{_nodeName}\n"), .. content]);
            pod.Metadata.Name = $"{pod.Metadata.Name}-{_nodeName}";
            pod.Metadata.NamespaceProperty ??= ObjectMetaExtensions.DefaultNamespace;
            pod.Metadata.Uid = new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
            pod.Metadata.Annotations ??= new Dictionary<string, string>();
            pod.Metadata.Annotations[ConfigSourceAnnotation] = "file";
            pod.Metadata.Annotations[ConfigHashAnnotation] = Convert.ToHexStringLower(hash.AsSpan(0, 16));
            pod.Metadata.CreationTimestamp ??= _time.GetUtcNow().UtcDateTime;
            pod.Spec.NodeName = _nodeName;
        }

        return (new FileState(pod, configMaps, secrets), null);
    }

    private static string? Validate(V1Pod pod)
    {
        if (string.IsNullOrEmpty(pod.Metadata?.Name))
        {
            return "the Pod has no metadata.name";
        }

        if (pod.Spec?.Containers is not { Count: > 0 } containers)
        {
            return $"Pod {pod.Metadata.Name} has no containers (spec.containers)";
        }

        var unnamed = containers.Concat(pod.Spec.InitContainers ?? []).FirstOrDefault(c => string.IsNullOrEmpty(c.Name) || string.IsNullOrEmpty(c.Image));
        return unnamed is null ? null : $"Pod {pod.Metadata.Name}: container \"{unnamed.Name}\" needs a name and an image";
    }

    private static partial class Log
    {
        [LoggerMessage(4100, LogLevel.Warning, "Static pod manifest {File} is invalid: {Problem}")]
        public static partial void InvalidManifest(ILogger logger, string file, string problem);
    }
}
