using System.Diagnostics.Metrics;
using k8s.Models;
using Krustlet.Host.Configuration;
using Krustlet.Pipeline.Diagnostics;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.PodEvents;
using Krustlet.Stages.Pressure;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Host.Agent;

/// <summary>What differs between the ways the agent runs: a cluster, a directory of static pods, a replay.</summary>
/// <param name="Resources">Where configMaps, secrets and service account tokens come from.</param>
/// <param name="Writer">Where status reports go besides the agent's own view: the API server, memory, or nowhere (null).</param>
/// <param name="Events">Where pod Events go.</param>
/// <param name="Allocatable">What the node offers pods, for admission.</param>
public sealed record AgentServices(IPodResources Resources, IPodReportWriter? Writer, IPodEventRecorder Events, NodeAllocatable Allocatable)
{
    /// <summary>Where the pods are reached (probes that name no host) and where HTTP handler pods listen: the node's IP when null; 127.0.0.1 in standalone mode.</summary>
    public string? PodIp { get; init; }
}

/// <summary>
/// The agent, composed: every stage built from the settings over the data directory (images, compile
/// cache, pod directories, logs, saved pod state), the pod pipeline, and the agent's view of its pods.
/// The verbs that run pods (<c>node</c>, <c>standalone</c>, <c>replay</c>, and <c>tune</c> once per trial)
/// differ only in the event source and the <see cref="AgentServices"/> they give it.
/// </summary>
public sealed class AgentRuntime : IAsyncDisposable
{
    private readonly WasmEngineHost _engine;
    private readonly OciRegistryClient _registry;
    private readonly ExecutorPool _pool;
    private readonly PodPipeline _pipeline;
    private bool _stopped;

    private AgentRuntime(AgentSettings settings, WasmEngineHost engine, OciRegistryClient registry, ExecutorPool pool, PodPipeline pipeline, NodePods pods, PipelineInstruments instruments, ReservedPorts reservedPorts, NodePressure pressure)
    {
        Settings = settings;
        Pressure = pressure;
        ReservedPorts = reservedPorts;
        _engine = engine;
        _registry = registry;
        _pool = pool;
        _pipeline = pipeline;
        Pods = pods;
        Instruments = instruments;
    }

    public AgentSettings Settings { get; }

    /// <summary>The node's pressure conditions (<c>Eviction:Hard</c>), read every 10 s: admission refuses pods under them, the node reports them.</summary>
    public NodePressure Pressure { get; }

    /// <summary>The pods on this node with their current status.</summary>
    public NodePods Pods { get; }

    /// <summary>The pipeline's instruments (meter <c>Krustlet.Pipeline</c>).</summary>
    public PipelineInstruments Instruments { get; }

    public PodPipeline Pipeline => _pipeline;

    /// <summary>
    /// The ports the agent itself listens on, which admission keeps from HTTP handlers: <c>Server:Port</c>
    /// and <c>Page:Port</c> as set, and, for a setting of 0, the port bound (<see cref="StartKubeletApiAsync"/>,
    /// <see cref="PipelinePage.PipelinePageHost.StartAsync"/>), which both happen before the pod source starts.
    /// </summary>
    public ReservedPorts ReservedPorts { get; }

    /// <summary>The ports the settings reserve before anything is bound: the kubelet API's, and the pipeline page's unless it has none or lives on the kubelet port.</summary>
    public static ReservedPorts ReservedBy(AgentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var ports = new ReservedPorts().Reserve(settings.ServerPort, SettingsCatalog.ServerPort.Key);
        return settings.PageOnKubeletPort ? ports : ports.Reserve(settings.PagePort, SettingsCatalog.PagePort.Key);
    }

    /// <summary>Builds every stage and starts the pipeline; pods flow once <see cref="RunAsync"/> gives it a source.</summary>
    /// <param name="settings">The agent's settings.</param>
    /// <param name="services">The mode's resources, writer, events and allocatable.</param>
    /// <param name="saveState">Keep pods' runtime state in the data directory so a restarted agent re-adopts them (not for replays).</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="meterFactory">Metrics (the kubelet API's <c>/metrics</c> reads these meters).</param>
    /// <param name="time">The clock.</param>
    /// <param name="wrapStages">Wraps the stages built before the pipeline starts (tune's tests make one stage expensive with it); null keeps them.</param>
    public static AgentRuntime Start(AgentSettings settings, AgentServices services, bool saveState = true, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null, TimeProvider? time = null, Func<PodStages, PodStages>? wrapStages = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(services);
        loggerFactory ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;
        Directory.CreateDirectory(settings.DataDir);

        var engine = new WasmEngineHost(settings.Wasm);
        var registry = new OciRegistryClient(settings.Registries, time: time);
        var pool = new ExecutorPool(engine, settings.MaxPods, time)
        {
            Http = settings.Http with { Addresses = [System.Net.IPAddress.Parse(services.PodIp ?? settings.NodeIp)], MeterFactory = meterFactory },
            LoggerFactory = loggerFactory,
        };
        var pods = new NodePods(services.Writer, settings.NodeIp, time, meterFactory);
        var instruments = new PipelineInstruments(meterFactory);
        var runOptions = new RunOptions(settings.LogsDirectory)
        {
            LogRotation = settings.LogRotation,
            Backoff = settings.Backoff,
            State = saveState ? new PodStateStore(settings.StateDirectory, loggerFactory.CreateLogger<PodStateStore>()) : null,
            PodIp = services.PodIp ?? settings.NodeIp,
        };
        var reservedPorts = ReservedBy(settings);
        var store = new ContentStore(settings.ImagesDirectory);
        var pressure = new NodePressure(new LinuxNodeSignalSource(settings.PodsDirectory, settings.ImagesDirectory), settings.Pressure, time, loggerFactory.CreateLogger<NodePressure>());
        var collector = new ImageCollector(store, loggerFactory.CreateLogger<ImageCollector>(), time);
        IEnumerable<string> ImagesInUse() => pods.Pods().SelectMany(p => PodContainers.All(p)).Select(c => c.Image);
        pressure.DiskPressureObserved += signals => collector.Collect(ImagesInUse(), BytesToFree(settings.Pressure, signals));
        pressure.Evaluated += signals =>
        {
            // The kubelet's image GC: above the high threshold of usage, back down to the low one.
            if (signals.ImageFsBytes is { Capacity: > 0 } fs && settings.ImageGcThresholds.High < 100 && (fs.Capacity - fs.Available) * 100.0 / fs.Capacity > settings.ImageGcThresholds.High)
            {
                collector.Collect(ImagesInUse(), (long)Math.Ceiling((fs.Capacity - fs.Available) - (fs.Capacity * settings.ImageGcThresholds.Low / 100.0)));
            }
        };
        var admission = new AdmissionOptions { MaxContainersPerPod = settings.MaxContainersPerPod, AllowOutboundNetwork = settings.AllowNetwork, ReservedPorts = reservedPorts, Pressure = pressure };
        var volumeOptions = new VolumeOptions(settings.PodsDirectory) { NodeIp = settings.NodeIp, AllowedHostPathPrefixes = settings.AllowedHostPathPrefixes, SyncFrequency = settings.SyncFrequency, EmptyDirSizeLimit = settings.EmptyDirSizeLimit };
        wrapStages ??= stages => stages;
        var pipeline = PodPipeline.Start(
            context => wrapStages(new PodStages(
                new AdmissionStage(services.Allocatable, admission),
                new ImagePullStage(new ImagePuller(registry, store, settings.Registries), context, services.Resources, events: services.Events),
                new CompileStage(new CompileCache(engine, settings.CompileCacheDirectory, loggerFactory.CreateLogger<CompileCache>())),
                new VolumeSetupStage(services.Resources, volumeOptions, services.Allocatable, context, time: time, logger: loggerFactory.CreateLogger<VolumeSetupStage>()),
                new RunStage(pool, runOptions, context, time, loggerFactory.CreateLogger<RunStage>(), services.Events))),
            pods,
            settings.Pipeline,
            instruments,
            loggerFactory,
            time);
        pressure.Start();
        return new AgentRuntime(settings, engine, registry, pool, pipeline, pods, instruments, reservedPorts, pressure);
    }

    // Under DiskPressure, the bytes that bring every crossed filesystem threshold back above its floor
    // (the kubelet reclaims to the threshold); 0, every unused image, when only inodes ran short.
    private static long BytesToFree(NodePressureOptions options, NodeSignals signals) =>
        options.Thresholds
            .Where(t => t.Signal is EvictionSignal.NodeFsAvailable or EvictionSignal.ImageFsAvailable)
            .Select(t => signals[t.Signal] is { } seen ? (long)Math.Ceiling(t.Floor(seen.Capacity) - seen.Available) : 0)
            .Where(bytes => bytes > 0)
            .DefaultIfEmpty(0)
            .Max();

    /// <summary>Runs pods from the source until it ends or <paramref name="cancellationToken"/> fires (then returns normally).</summary>
    public async Task RunAsync(IEventSource<V1Pod> source, CancellationToken cancellationToken)
    {
        try
        {
            await _pipeline.RunAsync(Pods.Observe(source), cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: StopAsync stops the pods and writes their last statuses.
        }
    }

    /// <summary>Stops the pipeline and the pods' containers, then writes the statuses left (each pod keeps its saved state).</summary>
    public async Task<PodPipelineShutdown> StopAsync()
    {
        _stopped = true;
        return await _pipeline.StopAsync();
    }

    /// <summary>
    /// Starts the kubelet HTTP API over this agent's pods and logs, with the settings' address, port,
    /// certificate (or one generated into the data directory), credentials and authorization. With the
    /// API server's <paramref name="reviews"/> (node mode), tokens are also reviewed by it
    /// (<c>Server:AuthenticationTokenWebhook</c>) and requests are authorized by it unless
    /// <c>Server:AuthorizationMode</c> is AlwaysAllow; without (standalone), AlwaysAllow is the default.
    /// </summary>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="time">The clock.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <param name="extraTokens">Bearer tokens accepted besides the token file's.</param>
    /// <param name="reviews">The API server's TokenReview and SubjectAccessReview, when there is an API server.</param>
    /// <param name="routes">More routes behind the API's authentication (the pipeline page, when it lives there).</param>
    public async Task<KubeletApi.KubeletServer> StartKubeletApiAsync(ILoggerFactory? loggerFactory, TimeProvider? time, CancellationToken cancellationToken, IReadOnlyList<string>? extraTokens = null, KubeletApi.Auth.IKubeletReviews? reviews = null, Action<Microsoft.AspNetCore.Routing.IEndpointRouteBuilder>? routes = null)
    {
        var options = new KubeletApi.KubeletServerOptions
        {
            Address = Settings.ServerAddress.ToString(),
            Port = Settings.ServerPort,
            TlsCertFile = Settings.TlsCertFile,
            TlsKeyFile = Settings.TlsPrivateKeyFile,
            ClientCaFile = Settings.ClientCaFile,
            BearerTokenFile = Settings.TokenFile,
            BearerTokens = new HashSet<string>(extraTokens ?? [], StringComparer.Ordinal),
            DataDirectory = Settings.DataDir,
            NodeName = Settings.NodeName,
            NodeIp = Settings.NodeIp,
            AnonymousAuth = Settings.AnonymousAuth,
            AuthenticationTokenWebhook = reviews is not null && Settings.AuthenticationTokenWebhook,
            TokenWebhookCacheTtl = Settings.AuthenticationTokenWebhookCacheTtl,
            AuthorizationMode = Settings.AuthorizationMode ?? (reviews is null ? KubeletApi.Auth.KubeletAuthorizationMode.AlwaysAllow : KubeletApi.Auth.KubeletAuthorizationMode.Webhook),
            AuthorizedCacheTtl = Settings.AuthorizationWebhookCacheAuthorizedTtl,
            UnauthorizedCacheTtl = Settings.AuthorizationWebhookCacheUnauthorizedTtl,
        };
        var server = new KubeletApi.KubeletServer(options, Pods, Settings.LogsDirectory, time, loggerFactory, reviews, _pipeline.Stages.Run as IPodUsageSource, routes);
        try
        {
            await server.StartAsync(cancellationToken);
            ReservedPorts.Reserve(server.Endpoint.Port, SettingsCatalog.ServerPort.Key);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Removes what pods deleted while the agent was down left in the data directory: saved state, pod
    /// directories and logs of every pod whose UID is not in <paramref name="live"/>.
    /// </summary>
    /// <returns>The UIDs forgotten.</returns>
    public static IReadOnlyList<string> ForgetPodsExcept(AgentSettings settings, IReadOnlySet<string> live)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(live);
        var forgotten = new SortedSet<string>(StringComparer.Ordinal);
        if (Directory.Exists(settings.StateDirectory))
        {
            var store = new PodStateStore(settings.StateDirectory);
            foreach (var saved in store.List().Where(p => !live.Contains(p.Uid)))
            {
                store.Delete(saved.Uid);
                forgotten.Add(saved.Uid);
            }
        }

        if (Directory.Exists(settings.PodsDirectory))
        {
            foreach (var dir in Directory.EnumerateDirectories(settings.PodsDirectory).Where(d => !live.Contains(Path.GetFileName(d))))
            {
                EmptyDirLimits.RemoveDirectory(dir); // a size-limited emptyDir's tmpfs outlives the agent that mounted it
                forgotten.Add(Path.GetFileName(dir));
            }
        }

        if (Directory.Exists(settings.LogsDirectory))
        {
            foreach (var dir in Directory.EnumerateDirectories(settings.LogsDirectory))
            {
                var uid = PodLogLayout.UidOf(dir);
                if (!live.Contains(uid))
                {
                    Directory.Delete(dir, recursive: true);
                    forgotten.Add(uid);
                }
            }
        }

        return [.. forgotten];
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            await StopAsync();
        }

        Pressure.Dispose();
        await _pipeline.DisposeAsync();
        _pool.Dispose();
        _registry.Dispose();
        _engine.Dispose();
        Pods.Dispose();
        Instruments.Dispose();
    }
}
