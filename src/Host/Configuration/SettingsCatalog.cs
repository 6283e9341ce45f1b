using System.Net;
using Krustlet.Host.KubeletApi;
using Krustlet.Host.Standalone;
using Krustlet.Pipeline.Configuration;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.Run;

namespace Krustlet.Host.Configuration;

/// <summary>
/// Every setting the agent reads, declared once with its typed default: the one list the reader
/// validates against and takes defaults from, the flags are made from, and <c>krustlet settings</c>
/// renders the README's configuration reference from. A default the pipeline, engine or run stage
/// already owns is taken from it, so no default is written twice.
/// </summary>
public static class SettingsCatalog
{
    private static readonly WasmEngineOptions WasmDefaults = new();
    private static readonly RestartBackoffOptions BackoffDefaults = new();

    public static readonly Setting<string?> DataDir = new(nameof(DataDir), SettingKind.Path, null, "Images, compiled modules, pod directories, logs, pod state and the generated certificate.", "--data-dir") { Shown = "~/.local/share/krustlet" };
    public static readonly Setting<string?> Kubeconfig = new(nameof(Kubeconfig), SettingKind.ExistingFile, null, "How `node` reaches the API server. With `--bootstrap-kubeconfig` it need not exist: when it is missing, or its client certificate has expired, the bootstrap writes it, with a client certificate the cluster signed.", "--kubeconfig") { Shown = "$KUBECONFIG, else ~/.kube/config, else in-cluster; with a bootstrap kubeconfig, <DataDir>/kubeconfig" };
    public static readonly Setting<string?> BootstrapKubeconfig = new(nameof(BootstrapKubeconfig), SettingKind.FilePath, null, "A kubeconfig used only to get the node's client certificate (TLS bootstrap): when `--kubeconfig` is missing, the node asks the API server for a certificate with a CertificateSigningRequest (signer `kubernetes.io/kube-apiserver-client-kubelet`, CN `system:node:<name>`, O `system:nodes`), waits for it to be approved and issued, and writes the key and certificate into <DataDir>/pki and a kubeconfig that uses them to `--kubeconfig`. The node then also asks for its serving certificate (signer `kubernetes.io/kubelet-serving`, its name and IP as SANs) unless `--tls-cert-file` is given, and rotates both certificates at 70–90 % of their lifetime. May be missing once the kubeconfig exists.", "--bootstrap-kubeconfig");
    public static readonly Setting<string?> NodeName = new("Node:Name", SettingKind.Text, null, "The node's name; static pods get it as a name suffix.", "--node-name") { Shown = "this host's name, lower case" };
    public static readonly Setting<IPAddress?> NodeIp = new("Node:Ip", SettingKind.IpAddress, null, "The node's InternalIP, also every pod's IP (wasm pods share the node's network).", "--node-ip") { Shown = "this host's first non-loopback IPv4 address, else 127.0.0.1" };
    public static readonly Setting<int> MaxPods = new("Node:MaxPods", SettingKind.WholeNumber, NodeOptions.DefaultMaxPods, "Pods this node runs at once; also the executor pool's size.", "--max-pods") { Maximum = 100_000 };
    public static readonly Setting<int> MaxContainersPerPod = new("Node:MaxContainersPerPod", SettingKind.WholeNumber, PodValidation.DefaultMaxContainers, "The most init and app containers one pod may have together; a pod with more is refused (reason Invalid).") { Maximum = 10_000 };
    public static readonly Setting<IReadOnlyDictionary<string, string>?> NodeLabels = new("Node:Labels", SettingKind.Map, null, "Extra node labels (`kubernetes.io/os` and `kubernetes.io/arch` are always set).", "--node-label");
    public static readonly Setting<IReadOnlyList<string>?> NodeTaints = new("Node:Taints", SettingKind.List, [.. NodeOptions.DefaultTaints.Select(t => t.Value is null ? $"{t.Key}:{t.Effect}" : $"{t.Key}={t.Value}:{t.Effect}")], "Node taints as `key=value:Effect`; an empty list registers none.", "--register-with-taint");
    public static readonly Setting<IPAddress> ServerAddress = new("Server:Address", SettingKind.IpAddress, IPAddress.Any, "The address the kubelet API listens on.", "--address");
    public static readonly Setting<int> ServerPort = new("Server:Port", SettingKind.WholeNumber, KubeletServerOptions.DefaultPort, "The kubelet API's port; 0 picks a free one.", "--port") { Minimum = 0, Maximum = 65535 };
    public static readonly Setting<string?> TlsCertFile = new("Server:TlsCertFile", SettingKind.ExistingFile, null, "The kubelet API's certificate (PEM).", "--tls-cert-file") { Shown = "none: a self-signed certificate in <DataDir>/pki" };
    public static readonly Setting<string?> TlsPrivateKeyFile = new("Server:TlsPrivateKeyFile", SettingKind.ExistingFile, null, "The certificate's private key (PEM); required with the certificate.", "--tls-private-key-file");
    public static readonly Setting<string?> ClientCaFile = new("Server:ClientCaFile", SettingKind.ExistingFile, null, "CA bundle (PEM) that signs accepted client certificates, as the API server's kubelet client certificate.", "--client-ca-file");
    public static readonly Setting<string?> TokenFile = new("Server:TokenFile", SettingKind.ExistingFile, null, "Accepted bearer tokens, one per line: a bare token (user `system:krustlet:token-file`), or the API server's token file columns `token,user,uid,\"group1,group2\"`.", "--token-file");
    public static readonly Setting<bool> AnonymousAuth = new("Server:AnonymousAuth", SettingKind.Boolean, false, "Enables anonymous requests to the kubelet API: a request with no credentials is served as user `system:anonymous`, group `system:unauthenticated` (and then authorized), instead of refused with 401. Requests whose credentials fail are refused either way.", "--anonymous-auth");
    public static readonly Setting<bool> AuthenticationTokenWebhook = new("Server:AuthenticationTokenWebhook", SettingKind.Boolean, true, "Use the TokenReview API to determine authentication for bearer tokens not in the token file (`node` only; standalone has no API server).", "--authentication-token-webhook");
    public static readonly Setting<TimeSpan> AuthenticationTokenWebhookCacheTtl = new("Server:AuthenticationTokenWebhookCacheTtl", SettingKind.Duration, KubeletServerOptions.DefaultTokenWebhookCacheTtl, "The duration to cache responses from the webhook token authenticator, valid and invalid tokens alike.", "--authentication-token-webhook-cache-ttl");
    public static readonly Setting<string?> AuthorizationMode = new("Server:AuthorizationMode", SettingKind.Text, null, "Authorization mode for the kubelet API: `AlwaysAllow` (every authenticated request) or `Webhook` (each request is asked of the API server with a SubjectAccessReview on `nodes/<subresource>`: `stats`, `metrics`, `log` (for /logs), `spec`, else `proxy`; verb from the HTTP method). Denied requests get 403.", "--authorization-mode") { Shown = "Webhook in `node`, AlwaysAllow in `standalone`" };
    public static readonly Setting<TimeSpan> AuthorizationWebhookCacheAuthorizedTtl = new("Server:AuthorizationWebhookCacheAuthorizedTtl", SettingKind.Duration, KubeletServerOptions.DefaultAuthorizedCacheTtl, "The duration to cache 'authorized' responses from the webhook authorizer.", "--authorization-webhook-cache-authorized-ttl");
    public static readonly Setting<TimeSpan> AuthorizationWebhookCacheUnauthorizedTtl = new("Server:AuthorizationWebhookCacheUnauthorizedTtl", SettingKind.Duration, KubeletServerOptions.DefaultUnauthorizedCacheTtl, "The duration to cache 'unauthorized' responses from the webhook authorizer.", "--authorization-webhook-cache-unauthorized-ttl");
    public static readonly Setting<int> PagePort = new("Page:Port", SettingKind.WholeNumber, PipelinePage.PipelinePageServer.DefaultPort, "The live pipeline page's port on 127.0.0.1 (`node` and `standalone` print its URL); 0 picks a free one, -1 serves no page there.", "--page-port") { Minimum = -1, Maximum = 65535 };
    public static readonly Setting<bool> PageOnKubeletPort = new("Page:OnKubeletPort", SettingKind.Boolean, false, "Serve the pipeline page at /pipeline on the kubelet API's port, behind its authentication, instead of on loopback.");
    public static readonly Setting<IReadOnlyList<string>?> InsecureRegistries = new("Registries:Insecure", SettingKind.List, null, "Registries (host or host:port) reached over plain HTTP.", "--insecure-registry") { Shown = "none (loopback registries are always plain HTTP)" };
    public static readonly Setting<IReadOnlyDictionary<string, string>?> RegistryMirrors = new("Registries:Mirrors", SettingKind.Map, null, "Per registry, mirrors tried first, as `registry=mirror1;mirror2`.", "--registry-mirror");
    public static readonly Setting<TimeSpan> RegistryConnectTimeout = new("Registries:ConnectTimeout", SettingKind.Duration, RegistryOptions.DefaultConnectTimeout, "How long opening a connection to a registry may take.");
    public static readonly Setting<TimeSpan> RegistryResponseTimeout = new("Registries:ResponseTimeout", SettingKind.Duration, RegistryOptions.DefaultResponseTimeout, "How long a registry may take to start answering a request; then the pull fails with ErrImagePull and the reason.");
    public static readonly Setting<TimeSpan> RegistryIdleTimeout = new("Registries:IdleTimeout", SettingKind.Duration, RegistryOptions.DefaultIdleTimeout, "How long a download may go without a byte before the pull fails with ErrImagePull.");
    public static readonly Setting<int> MaxConcurrentPullsPerRegistry = new("Registries:MaxConcurrentPullsPerRegistry", SettingKind.WholeNumber, RegistryOptions.DefaultMaxConcurrentPullsPerRegistry, "Pulls in flight to one registry at once (the kubelet's `maxParallelImagePulls`, but per registry); more wait their turn. A pull that waits on the network holds no ImagePull slot (its pod shows ContainerCreating, \"Pulling image\"), so a registry that hangs delays only its own pulls.") { Maximum = 1000 };
    public static readonly Setting<string?> PullCredentialsVerification = new("Registries:PullCredentialsVerificationPolicy", SettingKind.Text, nameof(Stages.ImagePull.Registry.PullCredentialsVerification.NeverVerifyPreloadedImages), "Which images already on the node a pod may use without its own pull credentials being checked (the kubelet's `imagePullCredentialsVerificationPolicy`, KEP-2535): `NeverVerifyPreloadedImages` (images imported with `--images` or `krustlet image import`, and images pulled anonymously, are free to use; an image the node pulled with credentials is used by a pod only once the registry accepted that pod's own credentials, or its lack of them, for it: one manifest request, remembered per manifest and credential; wrong credentials give ErrImagePull with the registry's reason), `AlwaysVerify` (every image, preloaded ones too) or `NeverVerify` (any pod may use any image on the node, as kubelets before KEP-2535). Concurrent pulls are shared only between pods with the same credentials.");
    public static readonly Setting<IReadOnlyList<string>?> AllowedHostPaths = new("Volumes:AllowedHostPathPrefixes", SettingKind.List, null, "Host path prefixes hostPath volumes may mount.", "--allowed-host-path") { Shown = "none (hostPath volumes refused)" };
    public static readonly Setting<TimeSpan> SyncFrequency = new("Volumes:SyncFrequency", SettingKind.Duration, Stages.VolumeSetup.VolumeOptions.DefaultSyncFrequency, "How often running pods' configMap, secret, downwardAPI and projected volumes are read again from their sources and, when changed, rewritten atomically (the kubelet's `..data` link swap; subPath mounts and env values are not updated, as in Kubernetes). A pod's labels and annotations reach its downwardAPI files at the pod's update.", "--sync-frequency");
    public static readonly Setting<string?> EmptyDirSizeLimit = new("Volumes:EmptyDirSizeLimit", SettingKind.Text, null, "How an emptyDir's `sizeLimit` is enforced: `Evict` (as the kubelet: the volume is measured every 10 s and whenever a container exits, and a pod over the limit is evicted, phase Failed, reason Evicted; a guest can write past the limit until then) or `Tmpfs` (also a tmpfs of that size is mounted on the volume, so writes past it fail with ENOSPC; needs root; the volume's contents are then held in memory).") { Shown = "Evict" };
    public static readonly Setting<string?> EvictionHard = new("Eviction:Hard", SettingKind.Text, Stages.Pressure.EvictionThresholds.Defaults, "The hard eviction thresholds, as the kubelet's `--eviction-hard`: `signal<quantity` pairs separated by commas (signals `memory.available`, `nodefs.available`, `nodefs.inodesFree`, `imagefs.available`, `imagefs.inodesFree`, `pid.available`; a quantity such as `100Mi` or a percentage of the capacity such as `10%`). Crossing one sets MemoryPressure, DiskPressure or PIDPressure on the node; while one holds, new pods are refused with reason Evicted (BestEffort pods only, under MemoryPressure alone; static and system-critical pods never), and under DiskPressure unused images are collected. The node filesystem is the pods' directory's, the image filesystem the images' directory's; `none` sets no threshold.", "--eviction-hard");
    public static readonly Setting<TimeSpan> EvictionPressureTransitionPeriod = new("Eviction:PressureTransitionPeriod", SettingKind.Duration, Stages.Pressure.NodePressureOptions.DefaultTransitionPeriod, "How long a pressure condition stays true after its signal recovered, so it does not flap.", "--eviction-pressure-transition-period");
    public static readonly Setting<int> ImageGcHighThreshold = new("ImageGc:HighThresholdPercent", SettingKind.WholeNumber, 85, "The image filesystem's usage (percent) above which unused images are removed, least recently pulled first, until it is at `ImageGc:LowThresholdPercent` (the kubelet's `--image-gc-high-threshold`); checked every 10 s. 100 turns it off.", "--image-gc-high-threshold") { Minimum = 0, Maximum = 100 };
    public static readonly Setting<int> ImageGcLowThreshold = new("ImageGc:LowThresholdPercent", SettingKind.WholeNumber, 80, "The usage (percent) image collection brings the image filesystem back to (the kubelet's `--image-gc-low-threshold`); below the high threshold.", "--image-gc-low-threshold") { Minimum = 0, Maximum = 100 };
    public static readonly Setting<long> LogMaxSize = new("Logs:MaxSize", SettingKind.Size, LogRotationOptions.Default.MaxSizeBytes, "A container log file rotates before it grows past this size.", "--container-log-max-size");
    public static readonly Setting<int> LogMaxFiles = new("Logs:MaxFiles", SettingKind.WholeNumber, LogRotationOptions.Default.MaxFiles, "Log files kept per container run, the current one included.", "--container-log-max-files") { Maximum = 1000 };
    public static readonly Setting<TimeSpan> BackoffInitial = new("Backoff:Initial", SettingKind.Duration, BackoffDefaults.Initial, "CrashLoopBackOff's first delay.", "--backoff-initial");
    public static readonly Setting<TimeSpan> BackoffMax = new("Backoff:Max", SettingKind.Duration, BackoffDefaults.Max, "CrashLoopBackOff's longest delay.", "--backoff-max");
    public static readonly Setting<TimeSpan> BackoffResetAfter = new("Backoff:ResetAfter", SettingKind.Duration, BackoffDefaults.ResetAfter, "A run this long resets the delay.", "--backoff-reset-after");
    public static readonly Setting<double> ApiQps = new("Api:Qps", SettingKind.Number, ApiRateLimiter.DefaultQps, "API requests per second (watches exempt).", "--kube-api-qps");
    public static readonly Setting<int> ApiBurst = new("Api:Burst", SettingKind.WholeNumber, ApiRateLimiter.DefaultBurst, "API requests allowed in a burst.", "--kube-api-burst") { Maximum = 100_000 };
    public static readonly Setting<TimeSpan> ShutdownTimeout = new("Pipeline:ShutdownTimeout", SettingKind.Duration, PipelineOptions.DefaultShutdownTimeout, "On SIGTERM/SIGINT: how long in-flight work and the final statuses may take.", "--shutdown-timeout");
    public static readonly Setting<TimeSpan> CancellationGrace = new("Pipeline:CancellationGrace", SettingKind.Duration, PipelineOptions.DefaultCancellationGrace, "After the shutdown deadline: how long cancelled work may take to unwind.");
    public static readonly Setting<bool> FuelEnabled = new("Wasm:FuelEnabled", SettingKind.Boolean, WasmDefaults.FuelEnabled, "Meter guest instructions with Wasmtime fuel.");
    public static readonly Setting<long> FuelPerContainer = new("Wasm:FuelPerContainer", SettingKind.WholeNumber, checked((long)WasmDefaults.FuelPerContainer), "Fuel each container run gets when fuel is on.") { Maximum = long.MaxValue };
    public static readonly Setting<TimeSpan> EpochTick = new("Wasm:EpochTick", SettingKind.Duration, WasmDefaults.EpochTick, "The executor's time slice: a running guest yields its thread to the next one this often (and sees a kill or deadline).");
    public static readonly Setting<bool> CompactMemories = new("Wasm:CompactMemories", SettingKind.Boolean, WasmDefaults.CompactMemories, "Pool slots sized to `Wasm:MaxContainerMemory` with no guard region (memory accesses bounds-checked in code) instead of 4 GiB each: 4 memory mappings per slot instead of 6 and far less address space, for nodes of tens of thousands of pods; a module that declares more memory than the cap is then refused when compiled.");
    public static readonly Setting<int> ExecutorThreads = new("Wasm:ExecutorThreads", SettingKind.WholeNumber, WasmDefaults.ExecutorThreads, "Threads that run every core-module guest (M:N); 0 is one per core. A sleeping guest holds none.") { Maximum = 256 };
    public static readonly Setting<int> PoolSlots = new("Wasm:PoolSlots", SettingKind.WholeNumber, WasmDefaults.PoolSlots, "Instance slots (memory, table, fiber stack each) of Wasmtime's pool, reserved at start; 0 takes `Node:MaxPods`. A container that finds the pool full fails to start (StartError) and is retried with backoff.") { Maximum = 1_000_000 };
    public static readonly Setting<long> MaxContainerMemory = new("Wasm:MaxContainerMemory", SettingKind.Size, WasmDefaults.MaxContainerMemory, "The most each linear memory and each table of one container may hold when its pod sets no `limits.memory`, and the ceiling of one that sets more (guests run inside the agent); a module that declares more is OOMKilled.");
    public static readonly Setting<TimeSpan> HttpRequestTimeout = new("Http:RequestTimeout", SettingKind.Duration, Stages.Run.Http.HttpHandlerOptions.DefaultRequestTimeout, "HTTP handler pods: how long one request may take, arrival to last byte; then it is answered 504 and its instance interrupted. A pod may set its own with the annotation `krustlet.dev/http-request-timeout`.", "--http-request-timeout");
    public static readonly Setting<long> HttpMaxRequestBody = new("Http:MaxRequestBody", SettingKind.Size, Stages.Run.Http.HttpHandlerOptions.DefaultMaxRequestBodyBytes, "HTTP handler pods: the largest request body (the instance's stdin, held in memory); a larger one is answered 413.", "--http-max-request-body");
    public static readonly Setting<int> HttpMaxConcurrentRequests = new("Http:MaxConcurrentRequests", SettingKind.WholeNumber, Stages.Run.Http.HttpHandlerOptions.DefaultMaxConcurrentRequests, "HTTP handler pods: requests of one pod that run at once (an instance each); a pod may set its own with `krustlet.dev/http-max-concurrent-requests`.", "--http-max-concurrent-requests") { Minimum = 1 };
    public static readonly Setting<int> HttpRequestQueue = new("Http:RequestQueue", SettingKind.WholeNumber, Stages.Run.Http.HttpHandlerOptions.DefaultRequestQueue, "HTTP handler pods: requests of one pod that may wait for an instance; more are answered 503 with Retry-After.", "--http-request-queue") { Minimum = 0 };
    public static readonly Setting<bool> AllowNetwork = new("Wasm:AllowNetwork", SettingKind.Boolean, new Stages.Admission.AdmissionOptions().AllowOutboundNetwork, "Whether pods may give their WASI 0.2 components outbound network with the annotation `krustlet.dev/network: outbound` (sockets to any address the node reaches, and name lookups); false refuses such pods at admission (NetworkForbidden). Without the annotation components have no network either way.");
    public static readonly Setting<TimeSpan> FileCheckFrequency = new("Standalone:FileCheckFrequency", SettingKind.Duration, StaticPodSource.DefaultRescanInterval, "Standalone: how often the manifest directory is rescanned (file changes are also watched).");

    private static readonly Dictionary<(string Stage, string Setting), Setting<int>> StageSettings = BuildStageSettings();

    /// <summary>The key of a stage's setting: <c>Pipeline:Stages:&lt;stage&gt;:Parallelism|Capacity</c>.</summary>
    public static string Stage(string stage, string setting) => $"Pipeline:Stages:{stage}:{setting}";

    /// <summary>A stage's <c>Parallelism</c> or <c>Capacity</c> setting; its default is the stage's in <see cref="StageNames.Defaults"/>.</summary>
    public static Setting<int> ForStage(string stage, string setting) => StageSettings[(stage, setting)];

    /// <summary>Every setting, in the reference's order.</summary>
    public static IReadOnlyList<Setting> All { get; } =
    [
        DataDir, Kubeconfig, BootstrapKubeconfig, NodeName, NodeIp, MaxPods, MaxContainersPerPod, NodeLabels, NodeTaints,
        ServerAddress, ServerPort, TlsCertFile, TlsPrivateKeyFile, ClientCaFile, TokenFile, PagePort, PageOnKubeletPort,
        AnonymousAuth, AuthenticationTokenWebhook, AuthenticationTokenWebhookCacheTtl, AuthorizationMode, AuthorizationWebhookCacheAuthorizedTtl, AuthorizationWebhookCacheUnauthorizedTtl,
        InsecureRegistries, RegistryMirrors, RegistryConnectTimeout, RegistryResponseTimeout, RegistryIdleTimeout, MaxConcurrentPullsPerRegistry, PullCredentialsVerification, AllowedHostPaths, SyncFrequency, EmptyDirSizeLimit, EvictionHard, EvictionPressureTransitionPeriod, ImageGcHighThreshold, ImageGcLowThreshold, LogMaxSize, LogMaxFiles,
        BackoffInitial, BackoffMax, BackoffResetAfter, ApiQps, ApiBurst, ShutdownTimeout, CancellationGrace,
        FuelEnabled, FuelPerContainer, EpochTick, CompactMemories, MaxContainerMemory, ExecutorThreads, PoolSlots, AllowNetwork,
        HttpRequestTimeout, HttpMaxRequestBody, HttpMaxConcurrentRequests, HttpRequestQueue, FileCheckFrequency,
        .. StageSettings.Values,
    ];

    /// <summary>The setting with this key (case-insensitive), or null.</summary>
    public static Setting? Find(string key) => ByKey.GetValueOrDefault(key);

    private static readonly Dictionary<string, Setting> ByKey = All.ToDictionary(s => s.Key, StringComparer.OrdinalIgnoreCase);

    private static Dictionary<(string Stage, string Setting), Setting<int>> BuildStageSettings()
    {
        var settings = new Dictionary<(string, string), Setting<int>>();
        foreach (var (stage, defaults) in StageNames.Defaults)
        {
            settings[(stage, StageOptions.ParallelismKey)] = new(Stage(stage, StageOptions.ParallelismKey), SettingKind.WholeNumber, defaults.Parallelism, $"How many pods the {stage} stage works on at once.")
            {
                Maximum = 10_000,
                Shown = stage == StageNames.Compile ? "the number of cores" : null,
            };
            settings[(stage, StageOptions.CapacityKey)] = new(Stage(stage, StageOptions.CapacityKey), SettingKind.WholeNumber, defaults.Capacity, $"How many pods wait for or are in the {stage} stage before senders wait.") { Maximum = 1_000_000 };
        }

        return settings;
    }
}
