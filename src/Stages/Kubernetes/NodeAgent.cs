using System.Net;
using System.Runtime.InteropServices;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Krustlet.Stages.Compile;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.Kubernetes;

/// <summary>What this node tells the cluster about itself.</summary>
/// <param name="NodeName">The node's name.</param>
/// <param name="NodeIp">Its InternalIP.</param>
/// <param name="MaxPods">Its pod capacity (the kubelet's maxPods).</param>
public sealed record NodeOptions(string NodeName, string NodeIp, int MaxPods = NodeOptions.DefaultMaxPods)
{
    public const string Architecture = "wasm32-wasi";

    /// <summary>The kubelet's default maxPods.</summary>
    public const int DefaultMaxPods = 110;

    /// <summary>The kubelet's port.</summary>
    public const int DefaultKubeletPort = 10250;

    /// <summary>The kubelet API port, advertised in daemonEndpoints.</summary>
    public int KubeletPort { get; init; } = DefaultKubeletPort;

    /// <summary>Extra labels; those in the kubernetes.io and k8s.io namespaces the kubelet may not set are dropped.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Taints; by default kubernetes.io/arch=wasm32-wasi NoSchedule and NoExecute, as Krustlet's.</summary>
    public IReadOnlyList<V1Taint> Taints { get; init; } = DefaultTaints;

    /// <summary>kubernetes.io/arch=wasm32-wasi NoSchedule and NoExecute: only pods that tolerate them land here.</summary>
    public static IReadOnlyList<V1Taint> DefaultTaints { get; } =
    [
        new V1Taint { Key = "kubernetes.io/arch", Value = Architecture, Effect = "NoSchedule" },
        new V1Taint { Key = "kubernetes.io/arch", Value = Architecture, Effect = "NoExecute" },
    ];

    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(40);

    public TimeSpan LeaseRenewInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The node status is written at least this often even when nothing changed.</summary>
    public TimeSpan StatusReportInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The eviction manager's conditions (MemoryPressure, DiskPressure, PIDPressure); without it they are reported false.</summary>
    public Pressure.NodePressure? Pressure { get; init; }
}

/// <summary>
/// Makes this agent a node of the cluster: creates its Node (or brings an existing one up to date:
/// labels, taints and status), then renews its Lease in <c>kube-node-lease</c> every
/// <see cref="NodeOptions.LeaseRenewInterval"/> and rewrites the node status at least every
/// <see cref="NodeOptions.StatusReportInterval"/>. API errors are retried with backoff and never end the loop.
/// </summary>
public sealed partial class NodeAgent(IKubernetes client, NodeOptions options, TimeProvider? time = null, ILogger? logger = null)
{
    public const string LeaseNamespace = "kube-node-lease";

    private static readonly string[] AllowedKubernetesLabelPrefixes = ["kubelet.kubernetes.io/", "node.kubernetes.io/"];

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly DateTime _readySince = (time ?? TimeProvider.System).GetUtcNow().UtcDateTime;
    private int _renewals;

    /// <summary>Lease renewals that succeeded.</summary>
    public int Renewals => Volatile.Read(ref _renewals);

    /// <summary>The Node object this agent registers.</summary>
    public V1Node Desired()
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in options.Labels)
        {
            // Like the kubelet: labels under kubernetes.io or k8s.io only from the allowed prefixes.
            var prefix = key.Contains('/', StringComparison.Ordinal) ? key[..key.IndexOf('/', StringComparison.Ordinal)] : string.Empty;
            var restricted = prefix.EndsWith("kubernetes.io", StringComparison.Ordinal) || prefix.EndsWith("k8s.io", StringComparison.Ordinal);
            if (!restricted || AllowedKubernetesLabelPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
            {
                labels[key] = value;
            }
        }

        labels["kubernetes.io/os"] = NodeOptions.Architecture;
        labels["kubernetes.io/arch"] = NodeOptions.Architecture;
        labels["beta.kubernetes.io/os"] = NodeOptions.Architecture;
        labels["beta.kubernetes.io/arch"] = NodeOptions.Architecture;
        labels["kubernetes.io/hostname"] = options.NodeName;
        labels["type"] = "krustlet";

        return new V1Node
        {
            ApiVersion = "v1",
            Kind = "Node",
            Metadata = new V1ObjectMeta { Name = options.NodeName, Labels = labels },
            Spec = new V1NodeSpec { Taints = [.. options.Taints] },
            Status = Status(),
        };
    }

    /// <summary>The node's status: capacity measured from the machine, conditions, addresses, endpoints, info.</summary>
    public V1NodeStatus Status()
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var storage = new DriveInfo(Path.GetPathRoot(Environment.CurrentDirectory) ?? "/").TotalSize;
        var capacity = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new(Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ["memory"] = new(memory.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ["ephemeral-storage"] = new(storage.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ["pods"] = new(options.MaxPods.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        };
        V1NodeCondition Condition(string type, bool status, string reason, string message) =>
            new() { Type = type, Status = status ? "True" : "False", Reason = reason, Message = message, LastHeartbeatTime = now, LastTransitionTime = _readySince };
        var pressure = options.Pressure?.Conditions;
        V1NodeCondition PressureCondition(Pressure.PressureCondition type, string calmReason, string calmMessage) =>
            pressure?.FirstOrDefault(p => p.Condition == type) is { } state
                ? new() { Type = type.ToString(), Status = state.Active ? "True" : "False", Reason = state.Reason, Message = state.Message, LastHeartbeatTime = now, LastTransitionTime = state.Since.UtcDateTime }
                : Condition(type.ToString(), false, calmReason, calmMessage);
        return new V1NodeStatus
        {
            Capacity = capacity,
            Allocatable = capacity,
            Conditions =
            [
                Condition("Ready", true, "KubeletReady", "krustlet is posting ready status"),
                PressureCondition(Pressure.PressureCondition.MemoryPressure, "KubeletHasSufficientMemory", "krustlet has sufficient memory available"),
                PressureCondition(Pressure.PressureCondition.DiskPressure, "KubeletHasNoDiskPressure", "krustlet has no disk pressure"),
                PressureCondition(Pressure.PressureCondition.PIDPressure, "KubeletHasSufficientPID", "krustlet has sufficient PID available"),
            ],
            Addresses = [new V1NodeAddress { Type = "InternalIP", Address = options.NodeIp }, new V1NodeAddress { Type = "Hostname", Address = options.NodeName }],
            DaemonEndpoints = new V1NodeDaemonEndpoints { KubeletEndpoint = new V1DaemonEndpoint { Port = options.KubeletPort } },
            NodeInfo = new V1NodeSystemInfo
            {
                Architecture = NodeOptions.Architecture,
                OperatingSystem = NodeOptions.Architecture,
                OsImage = RuntimeInformation.OSDescription,
                KernelVersion = Environment.OSVersion.Version.ToString(),
                KubeletVersion = "v1.31.0-krustlet-dotnet",
                KubeProxyVersion = "v1.31.0-krustlet-dotnet",
                ContainerRuntimeVersion = $"wasmtime://{WasmEngineHost.WasmtimeVersion}",
                MachineID = options.NodeName,
                SystemUUID = options.NodeName,
                BootID = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
    }

    /// <summary>
    /// Creates the Node, or updates an existing one's labels, taints and status; retries API errors with
    /// backoff until it succeeds or <paramref name="cancellationToken"/> fires, as the kubelet keeps trying
    /// to register.
    /// </summary>
    public async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var delays = RetryDelays();
        while (true)
        {
            try
            {
                await RegisterOnceAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is HttpOperationException or HttpRequestException)
            {
                var delay = delays.Next(TimeSpan.Zero);
                Log.RegistrationFailed(_logger, ex.Message, delay);
                await Task.Delay(delay, _time, cancellationToken);
            }
        }
    }

    // Retries start at 200 ms and double, but never wait longer than a lease renewal interval.
    private Run.RestartBackoff RetryDelays() => new(new Run.RestartBackoffOptions { Initial = TimeSpan.FromMilliseconds(200), Max = options.LeaseRenewInterval });

    private async Task RegisterOnceAsync(CancellationToken cancellationToken)
    {
        var desired = Desired();
        try
        {
            await client.CoreV1.CreateNodeAsync(desired, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // It exists (a restart): bring labels and taints up to date, keeping labels others added.
            var existing = await client.CoreV1.ReadNodeAsync(options.NodeName, cancellationToken: cancellationToken);
            existing.Metadata.Labels ??= new Dictionary<string, string>();
            foreach (var (key, value) in desired.Metadata.Labels)
            {
                existing.Metadata.Labels[key] = value;
            }

            existing.Spec ??= new V1NodeSpec();
            existing.Spec.Taints = desired.Spec.Taints;
            await client.CoreV1.ReplaceNodeAsync(existing, options.NodeName, cancellationToken: cancellationToken);
        }

        await client.CoreV1.PatchNodeStatusAsync(new V1Patch(new { status = desired.Status }, V1Patch.PatchType.MergePatch), options.NodeName, cancellationToken: cancellationToken);
        Log.Registered(_logger, options.NodeName);
    }

    /// <summary>Renews the lease and reports status until cancelled; errors are retried, never thrown.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var lastStatus = _time.GetUtcNow();
        var lastPressure = PressureKey();
        var delays = RetryDelays();
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = options.LeaseRenewInterval;
            try
            {
                await RenewLeaseAsync(cancellationToken);
                Interlocked.Increment(ref _renewals);
                // A pressure condition that changed is written at the next renewal, not at the next report.
                var pressure = PressureKey();
                if (_time.GetUtcNow() - lastStatus >= options.StatusReportInterval || pressure != lastPressure)
                {
                    await client.CoreV1.PatchNodeStatusAsync(new V1Patch(new { status = Status() }, V1Patch.PatchType.MergePatch), options.NodeName, cancellationToken: cancellationToken);
                    lastStatus = _time.GetUtcNow();
                    lastPressure = pressure;
                }

                delays.Reset();
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is HttpOperationException or HttpRequestException)
            {
                wait = delays.Next(TimeSpan.Zero);
                Log.LeaseFailed(_logger, ex.Message, wait);
            }

            try
            {
                await Task.Delay(wait, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private string PressureKey() => options.Pressure is { } pressure ? string.Join(',', pressure.Active) : string.Empty;

    private async Task RenewLeaseAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        try
        {
            var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(options.NodeName, LeaseNamespace, cancellationToken: cancellationToken);
            lease.Spec ??= new V1LeaseSpec();
            lease.Spec.HolderIdentity = options.NodeName;
            lease.Spec.LeaseDurationSeconds = (int)options.LeaseDuration.TotalSeconds;
            lease.Spec.RenewTime = now;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, options.NodeName, LeaseNamespace, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.NotFound)
        {
            await client.CoordinationV1.CreateNamespacedLeaseAsync(
                new V1Lease
                {
                    ApiVersion = "coordination.k8s.io/v1",
                    Kind = "Lease",
                    Metadata = new V1ObjectMeta { Name = options.NodeName, NamespaceProperty = LeaseNamespace },
                    Spec = new V1LeaseSpec { HolderIdentity = options.NodeName, LeaseDurationSeconds = (int)options.LeaseDuration.TotalSeconds, RenewTime = now },
                },
                LeaseNamespace,
                cancellationToken: cancellationToken);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3200, LogLevel.Information, "Registered node {Node}")]
        public static partial void Registered(ILogger logger, string node);

        [LoggerMessage(3202, LogLevel.Warning, "Node registration failed: {Message}; retrying in {Wait}")]
        public static partial void RegistrationFailed(ILogger logger, string message, TimeSpan wait);

        [LoggerMessage(3201, LogLevel.Warning, "Lease renewal failed: {Message}; retrying in {Wait}")]
        public static partial void LeaseFailed(ILogger logger, string message, TimeSpan wait);
    }
}
