using System.Net;
using k8s.Models;
using Krustlet.Host.KubeletApi;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Pipeline.Configuration;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;

namespace Krustlet.Host.Configuration;

/// <summary>Settings that cannot be used: every problem is listed, each naming its setting and where it came from.</summary>
public sealed class InvalidSettingsException : Exception
{
    public InvalidSettingsException(IReadOnlyList<string> problems)
        : base(problems is null || problems.Count == 1
            ? $"invalid settings: {problems?[0]}"
            : $"invalid settings ({problems.Count} problems):{Environment.NewLine}  - {string.Join(Environment.NewLine + "  - ", problems)}")
    {
        Problems = problems ?? [];
    }

    public InvalidSettingsException()
        : this(["the settings are invalid."])
    {
    }

    public InvalidSettingsException(string message)
        : this([message])
    {
    }

    public InvalidSettingsException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [message];
    }

    public IReadOnlyList<string> Problems { get; }
}

/// <summary>The agent's settings, read and validated by <see cref="AgentSettingsReader"/>; see <see cref="SettingsCatalog"/> for each one.</summary>
public sealed record AgentSettings
{
    public required string DataDir { get; init; }

    public string? Kubeconfig { get; init; }

    /// <summary><c>BootstrapKubeconfig</c>: the kubeconfig that gets the node its client certificate when <see cref="Kubeconfig"/> is missing (TLS bootstrap).</summary>
    public string? BootstrapKubeconfig { get; init; }

    public required string NodeName { get; init; }

    public required string NodeIp { get; init; }

    public required int MaxPods { get; init; }

    /// <summary><c>Node:MaxContainersPerPod</c>: the most init and app containers one pod may have together.</summary>
    public required int MaxContainersPerPod { get; init; }

    public IReadOnlyDictionary<string, string> NodeLabels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<V1Taint> NodeTaints { get; init; } = [];

    public required IPAddress ServerAddress { get; init; }

    public required int ServerPort { get; init; }

    public string? TlsCertFile { get; init; }

    public string? TlsPrivateKeyFile { get; init; }

    public string? ClientCaFile { get; init; }

    public string? TokenFile { get; init; }

    public bool AnonymousAuth { get; init; }

    public bool AuthenticationTokenWebhook { get; init; } = true;

    public TimeSpan AuthenticationTokenWebhookCacheTtl { get; init; } = KubeletServerOptions.DefaultTokenWebhookCacheTtl;

    /// <summary><c>Server:AuthorizationMode</c>, or null for the mode's default (Webhook in <c>node</c>, AlwaysAllow in <c>standalone</c>).</summary>
    public KubeletAuthorizationMode? AuthorizationMode { get; init; }

    public TimeSpan AuthorizationWebhookCacheAuthorizedTtl { get; init; } = KubeletServerOptions.DefaultAuthorizedCacheTtl;

    public TimeSpan AuthorizationWebhookCacheUnauthorizedTtl { get; init; } = KubeletServerOptions.DefaultUnauthorizedCacheTtl;
    /// <summary><c>Page:Port</c>: the pipeline page's loopback port; 0 a free one, -1 none.</summary>
    public int PagePort { get; init; } = SettingsCatalog.PagePort.Default;

    /// <summary><c>Page:OnKubeletPort</c>: the page is served on the kubelet API, behind its authentication, instead.</summary>
    public bool PageOnKubeletPort { get; init; }

    public required RegistryOptions Registries { get; init; }

    public IReadOnlyList<string> AllowedHostPathPrefixes { get; init; } = [];

    /// <summary><c>Volumes:SyncFrequency</c>: how often projected volumes follow their sources.</summary>
    public TimeSpan SyncFrequency { get; init; } = SettingsCatalog.SyncFrequency.Default;

    /// <summary><c>ImageGc:HighThresholdPercent</c> and <c>LowThresholdPercent</c>: the image filesystem usage that starts image collection, and the usage it stops at.</summary>
    public (int High, int Low) ImageGcThresholds { get; init; } = (85, 80);

    /// <summary><c>Eviction:Hard</c> and <c>Eviction:PressureTransitionPeriod</c>: the node's pressure conditions.</summary>
    public Stages.Pressure.NodePressureOptions Pressure { get; init; } = new();

    /// <summary><c>Volumes:EmptyDirSizeLimit</c>: how an emptyDir's sizeLimit is enforced.</summary>
    public Stages.VolumeSetup.EmptyDirSizeLimitMode EmptyDirSizeLimit { get; init; } = Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict;

    public LogRotationOptions LogRotation { get; init; } = LogRotationOptions.Default;

    public RestartBackoffOptions Backoff { get; init; } = new();

    public required double ApiQps { get; init; }

    public required int ApiBurst { get; init; }

    public required PipelineOptions Pipeline { get; init; }

    public required WasmEngineOptions Wasm { get; init; }

    /// <summary><c>Wasm:AllowNetwork</c>: pods may ask for outbound network (<see cref="Stages.OutboundNetwork"/>); when false admission refuses them.</summary>
    public bool AllowNetwork { get; init; } = SettingsCatalog.AllowNetwork.Default;

    /// <summary><c>Http:*</c>: the limits of HTTP handler pods' requests (their addresses come from the mode).</summary>
    public Stages.Run.Http.HttpHandlerOptions Http { get; init; } = new();

    public required TimeSpan FileCheckFrequency { get; init; }

    /// <summary>Where images live under the data directory.</summary>
    public string ImagesDirectory => Path.Combine(DataDir, "images");

    /// <summary>Compiled modules (default: under the data directory; each trial of <c>krustlet tune</c> compiles afresh in a scratch directory).</summary>
    public string CompileCacheDirectory { get => field ?? Path.Combine(DataDir, "compile-cache"); init; }

    /// <summary>Pods' volume directories (default: under the data directory; a replay uses a scratch directory).</summary>
    public string PodsDirectory { get => field ?? Path.Combine(DataDir, "pods"); init; }

    /// <summary>Container logs, as /var/log/pods.</summary>
    public string LogsDirectory { get => field ?? Path.Combine(DataDir, "logs"); init; }

    /// <summary>Pods' saved runtime state.</summary>
    public string StateDirectory { get => field ?? Path.Combine(DataDir, "state"); init; }

    public string PkiDirectory => Path.Combine(DataDir, "pki");
}
