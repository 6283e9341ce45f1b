using Microsoft.Extensions.Configuration;

namespace Krustlet.Stages.ImagePull.Registry;

/// <summary>How the agent reaches registries, and how much it accepts from them.</summary>
public sealed record RegistryOptions
{
    /// <summary>Registries (host or host:port) spoken to over plain HTTP. Loopback hosts always are, as in Docker.</summary>
    public IReadOnlySet<string> InsecureRegistries { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Per registry, mirrors tried in order before the registry itself (pulls only).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Mirrors { get; init; } = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);

    public long MaxManifestBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>How long a connection to a registry may take to open (the socket's connect, TLS included).</summary>
    public TimeSpan ConnectTimeout { get; init; } = DefaultConnectTimeout;

    /// <summary>The kubelet-like bound on pulls in flight to one registry; more wait their turn without holding a stage slot.</summary>
    public int MaxConcurrentPullsPerRegistry { get; init; } = DefaultMaxConcurrentPullsPerRegistry;

    public const int DefaultMaxConcurrentPullsPerRegistry = 4;

    /// <summary>When a pod's pull credentials are checked for an image already on the node (the kubelet's <c>imagePullCredentialsVerificationPolicy</c>).</summary>
    public PullCredentialsVerification CredentialsVerification { get; init; } = PullCredentialsVerification.NeverVerifyPreloadedImages;

    /// <summary>How long a registry may take, once asked, to send the head of its answer.</summary>
    public TimeSpan ResponseTimeout { get; init; } = DefaultResponseTimeout;

    /// <summary>How long a download may go without a byte before it is given up.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan DefaultResponseTimeout = TimeSpan.FromSeconds(60);

    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(60);

    public long MaxConfigBytes { get; init; } = 1024 * 1024;

    /// <summary>The largest layer blob downloaded (a tar layer, or a wasm layer).</summary>
    public long MaxLayerBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>The largest module extracted from a tar layer.</summary>
    public long MaxModuleBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>The configuration section: <c>Registries:Insecure:0..n</c> and <c>Registries:Mirrors:&lt;registry&gt;:0..n</c>.</summary>
    public const string SectionName = "Registries";

    /// <summary>Reads the insecure registries and the mirrors; every malformed host is named.</summary>
    public static (RegistryOptions? Options, IReadOnlyList<string> Problems) Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(SectionName);
        var problems = new List<string>();

        List<string> Hosts(IConfigurationSection list) =>
            [.. list.GetChildren().Select(c => (c.Path, Host: c.Value?.Trim() ?? string.Empty)).Where(h =>
            {
                var ok = h.Host.Length > 0 && Uri.CheckHostName(h.Host.Split(':')[0]) != UriHostNameType.Unknown && !h.Host.Contains('/', StringComparison.Ordinal);
                if (!ok)
                {
                    problems.Add($"{h.Path} must be a registry host or host:port without a scheme (got '{h.Host}').");
                }

                return ok;
            }).Select(h => h.Host)];

        var insecure = Hosts(section.GetSection("Insecure"));
        var mirrors = section.GetSection("Mirrors").GetChildren().ToDictionary(m => m.Key, m => (IReadOnlyList<string>)Hosts(m), StringComparer.OrdinalIgnoreCase);
        return problems.Count == 0
            ? (new RegistryOptions { InsecureRegistries = new HashSet<string>(insecure, StringComparer.OrdinalIgnoreCase), Mirrors = mirrors }, problems)
            : (null, problems);
    }

    public bool IsInsecure(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (InsecureRegistries.Contains(host))
        {
            return true;
        }

        var name = host.StartsWith('[') ? host[..(host.IndexOf(']', StringComparison.Ordinal) + 1)] : host.Split(':')[0];
        return name is "localhost" or "[::1]" || name.StartsWith("127.", StringComparison.Ordinal);
    }
}

/// <summary>
/// The kubelet's <c>imagePullCredentialsVerificationPolicy</c> (KEP-2535, "ensure secret pulled images"):
/// which images already on the node a pod may use without its own credentials being checked.
/// </summary>
public enum PullCredentialsVerification
{
    /// <summary>Any pod may use any image on the node (the kubelet's behaviour before KEP-2535).</summary>
    NeverVerify,

    /// <summary>
    /// Images imported into the store (preloaded) and images pulled anonymously are free to use; an image
    /// the node pulled with credentials is used by a pod only once the pod's own credentials (or none, if it
    /// has none) were accepted by the registry for it. The default.
    /// </summary>
    NeverVerifyPreloadedImages,

    /// <summary>Every pod's credentials (or their absence) are checked for every image it uses.</summary>
    AlwaysVerify,
}
