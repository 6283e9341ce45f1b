using Krustlet.Stages;

namespace Krustlet.Host.Configuration;

/// <summary>
/// Every setting the agent reads, with its default: the one list the reader validates against, the
/// flags are made from and the README's configuration reference is checked against.
/// </summary>
public static class SettingsCatalog
{
    public const string DataDir = "DataDir";
    public const string Kubeconfig = "Kubeconfig";
    public const string NodeName = "Node:Name";
    public const string NodeIp = "Node:Ip";
    public const string MaxPods = "Node:MaxPods";
    public const string NodeLabels = "Node:Labels";
    public const string NodeTaints = "Node:Taints";
    public const string ServerAddress = "Server:Address";
    public const string ServerPort = "Server:Port";
    public const string TlsCertFile = "Server:TlsCertFile";
    public const string TlsPrivateKeyFile = "Server:TlsPrivateKeyFile";
    public const string ClientCaFile = "Server:ClientCaFile";
    public const string TokenFile = "Server:TokenFile";
    public const string InsecureRegistries = "Registries:Insecure";
    public const string RegistryMirrors = "Registries:Mirrors";
    public const string AllowedHostPaths = "Volumes:AllowedHostPathPrefixes";
    public const string LogMaxSize = "Logs:MaxSize";
    public const string LogMaxFiles = "Logs:MaxFiles";
    public const string BackoffInitial = "Backoff:Initial";
    public const string BackoffMax = "Backoff:Max";
    public const string BackoffResetAfter = "Backoff:ResetAfter";
    public const string ApiQps = "Api:Qps";
    public const string ApiBurst = "Api:Burst";
    public const string ShutdownTimeout = "Pipeline:ShutdownTimeout";
    public const string CancellationGrace = "Pipeline:CancellationGrace";
    public const string FuelEnabled = "Wasm:FuelEnabled";
    public const string FuelPerContainer = "Wasm:FuelPerContainer";
    public const string EpochTick = "Wasm:EpochTick";
    public const string CompactMemories = "Wasm:CompactMemories";
    public const string FileCheckFrequency = "Standalone:FileCheckFrequency";

    /// <summary>The key of a stage's setting: <c>Pipeline:Stages:&lt;stage&gt;:Parallelism|Capacity</c>.</summary>
    public static string Stage(string stage, string setting) => $"Pipeline:Stages:{stage}:{setting}";

    public static IReadOnlyList<Setting> All { get; } = Build();

    /// <summary>The setting with this key (case-insensitive), or null.</summary>
    public static Setting? Find(string key) => ByKey.GetValueOrDefault(key);

    private static readonly Dictionary<string, Setting> ByKey = All.ToDictionary(s => s.Key, StringComparer.OrdinalIgnoreCase);

    private static List<Setting> Build()
    {
        List<Setting> settings =
        [
            new(DataDir, SettingKind.Path, "~/.local/share/krustlet", "Images, compiled modules, pod directories, logs, pod state and the generated certificate.", "--data-dir"),
            new(Kubeconfig, SettingKind.ExistingFile, "$KUBECONFIG, else ~/.kube/config, else in-cluster", "How `node` reaches the API server.", "--kubeconfig"),
            new(NodeName, SettingKind.Text, "this host's name, lower case", "The node's name; static pods get it as a name suffix.", "--node-name"),
            new(NodeIp, SettingKind.IpAddress, "this host's first non-loopback IPv4 address, else 127.0.0.1", "The node's InternalIP, also every pod's IP (wasm pods share the node's network).", "--node-ip"),
            new(MaxPods, SettingKind.WholeNumber, "110", "Pods this node runs at once; also the executor pool's size.", "--max-pods") { Maximum = 100_000 },
            new(NodeLabels, SettingKind.Map, "none", "Extra node labels (`kubernetes.io/os` and `kubernetes.io/arch` are always set).", "--node-label"),
            new(NodeTaints, SettingKind.List, "kubernetes.io/arch=wasm32-wasi:NoSchedule, kubernetes.io/arch=wasm32-wasi:NoExecute", "Node taints as `key=value:Effect`; an empty list registers none.", "--register-with-taint"),
            new(ServerAddress, SettingKind.IpAddress, "0.0.0.0", "The address the kubelet API listens on.", "--address"),
            new(ServerPort, SettingKind.WholeNumber, "10250", "The kubelet API's port; 0 picks a free one.", "--port") { Minimum = 0, Maximum = 65535 },
            new(TlsCertFile, SettingKind.ExistingFile, "none: a self-signed certificate in <DataDir>/pki", "The kubelet API's certificate (PEM).", "--tls-cert-file"),
            new(TlsPrivateKeyFile, SettingKind.ExistingFile, "none", "The certificate's private key (PEM); required with the certificate.", "--tls-private-key-file"),
            new(ClientCaFile, SettingKind.ExistingFile, "none", "CA bundle (PEM) that signs accepted client certificates, as the API server's kubelet client certificate.", "--client-ca-file"),
            new(TokenFile, SettingKind.ExistingFile, "none", "Accepted bearer tokens, one per line.", "--token-file"),
            new(InsecureRegistries, SettingKind.List, "none (loopback registries are always plain HTTP)", "Registries (host or host:port) reached over plain HTTP.", "--insecure-registry"),
            new(RegistryMirrors, SettingKind.Map, "none", "Per registry, mirrors tried first, as `registry=mirror1;mirror2`.", "--registry-mirror"),
            new(AllowedHostPaths, SettingKind.List, "none (hostPath volumes refused)", "Host path prefixes hostPath volumes may mount.", "--allowed-host-path"),
            new(LogMaxSize, SettingKind.Size, "10Mi", "A container log file rotates before it grows past this size.", "--container-log-max-size"),
            new(LogMaxFiles, SettingKind.WholeNumber, "5", "Log files kept per container run, the current one included.", "--container-log-max-files") { Maximum = 1000 },
            new(BackoffInitial, SettingKind.Duration, "10s", "CrashLoopBackOff's first delay.", "--backoff-initial"),
            new(BackoffMax, SettingKind.Duration, "5m", "CrashLoopBackOff's longest delay.", "--backoff-max"),
            new(BackoffResetAfter, SettingKind.Duration, "10m", "A run this long resets the delay.", "--backoff-reset-after"),
            new(ApiQps, SettingKind.Number, "50", "API requests per second (watches exempt).", "--kube-api-qps"),
            new(ApiBurst, SettingKind.WholeNumber, "100", "API requests allowed in a burst.", "--kube-api-burst") { Maximum = 100_000 },
            new(ShutdownTimeout, SettingKind.Duration, "30s", "On SIGTERM/SIGINT: how long in-flight work and the final statuses may take.", "--shutdown-timeout"),
            new(CancellationGrace, SettingKind.Duration, "5s", "After the shutdown deadline: how long cancelled work may take to unwind."),
            new(FuelEnabled, SettingKind.Boolean, "false", "Meter guest instructions with Wasmtime fuel."),
            new(FuelPerContainer, SettingKind.WholeNumber, "1000000000000", "Fuel each container run gets when fuel is on.") { Maximum = long.MaxValue },
            new(EpochTick, SettingKind.Duration, "10ms", "How often running guests are interrupted to check kills and deadlines."),
            new(CompactMemories, SettingKind.Boolean, "false", "Linear memories as plain allocations (no address-space reservation or guard pages): about 6 memory mappings per running container instead of 10, for nodes of thousands of pods; memory accesses are bounds-checked in code."),
            new(FileCheckFrequency, SettingKind.Duration, "20s", "Standalone: how often the manifest directory is rescanned (file changes are also watched)."),
        ];

        foreach (var stage in StageNames.Defaults)
        {
            settings.Add(new(Stage(stage.Key, "Parallelism"), SettingKind.WholeNumber, stage.Key == StageNames.Compile ? "the number of cores" : Invariant(stage.Value.Parallelism), $"How many pods the {stage.Key} stage works on at once.") { Maximum = 10_000 });
            settings.Add(new(Stage(stage.Key, "Capacity"), SettingKind.WholeNumber, Invariant(stage.Value.Capacity), $"How many pods wait for or are in the {stage.Key} stage before senders wait.") { Maximum = 1_000_000 });
        }

        return settings;
    }

    private static string Invariant(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
