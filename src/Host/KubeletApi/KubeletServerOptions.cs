using System.Net;
using Krustlet.Host.KubeletApi.Auth;

namespace Krustlet.Host.KubeletApi;

/// <summary>Settings of the kubelet HTTP API (<see cref="KubeletServer"/>).</summary>
public sealed record KubeletServerOptions
{
    /// <summary>The kubelet's port.</summary>
    public const int DefaultPort = Stages.Kubernetes.NodeOptions.DefaultKubeletPort;

    /// <summary>The address to listen on; <c>0.0.0.0</c> (every IPv4 interface) by default.</summary>
    public string Address { get; init; } = "0.0.0.0";

    /// <summary>The port; <see cref="DefaultPort"/> (10250) by default, 0 for any free port.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>
    /// The serving certificate (PEM). With <see cref="TlsKeyFile"/>; when neither is set, a self-signed
    /// certificate is generated into <c>&lt;DataDirectory&gt;/pki/kubelet.crt</c> and <c>kubelet.key</c>.
    /// </summary>
    public string? TlsCertFile { get; init; }

    /// <summary>The serving certificate's private key (PEM, PKCS#8, RSA or EC).</summary>
    public string? TlsKeyFile { get; init; }

    /// <summary>
    /// CA certificates (PEM) that client certificates must chain to, as the API server's kubelet client
    /// certificate does. Without it, client certificates are not accepted.
    /// </summary>
    public string? ClientCaFile { get; init; }

    /// <summary>Bearer tokens that are accepted (<c>Authorization: Bearer &lt;token&gt;</c>).</summary>
    public IReadOnlySet<string> BearerTokens { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>A file of more accepted bearer tokens, one per line (blank lines and <c>#</c> comments skipped), read at start.</summary>
    public string? BearerTokenFile { get; init; }

    /// <summary>
    /// Whether requests without credentials are served as user <c>system:anonymous</c> (group
    /// <c>system:unauthenticated</c>) rather than refused with 401; false by default, as the kubelet's configuration.
    /// </summary>
    public bool AnonymousAuth { get; init; }

    /// <summary>Whether bearer tokens not in the token file are reviewed by the API server (TokenReview); needs the server's reviews.</summary>
    public bool AuthenticationTokenWebhook { get; init; }

    /// <summary>How long a TokenReview's answer is kept, for valid and invalid tokens alike; the kubelet's 2 minutes by default.</summary>
    public TimeSpan TokenWebhookCacheTtl { get; init; } = DefaultTokenWebhookCacheTtl;

    /// <summary>How requests are authorized; <see cref="KubeletAuthorizationMode.AlwaysAllow"/> unless set (the agent's node mode sets Webhook).</summary>
    public KubeletAuthorizationMode AuthorizationMode { get; init; } = KubeletAuthorizationMode.AlwaysAllow;

    /// <summary>How long an allowed SubjectAccessReview is kept; the kubelet's 5 minutes by default.</summary>
    public TimeSpan AuthorizedCacheTtl { get; init; } = DefaultAuthorizedCacheTtl;

    /// <summary>How long a denied SubjectAccessReview is kept; the kubelet's 30 seconds by default.</summary>
    public TimeSpan UnauthorizedCacheTtl { get; init; } = DefaultUnauthorizedCacheTtl;

    /// <summary>The kubelet's <c>--authentication-token-webhook-cache-ttl</c> default.</summary>
    public static readonly TimeSpan DefaultTokenWebhookCacheTtl = TimeSpan.FromMinutes(2);

    /// <summary>The kubelet's <c>--authorization-webhook-cache-authorized-ttl</c> default.</summary>
    public static readonly TimeSpan DefaultAuthorizedCacheTtl = TimeSpan.FromMinutes(5);

    /// <summary>The kubelet's <c>--authorization-webhook-cache-unauthorized-ttl</c> default.</summary>
    public static readonly TimeSpan DefaultUnauthorizedCacheTtl = TimeSpan.FromSeconds(30);

    /// <summary>The agent's data directory; the generated certificate goes under <c>pki/</c>. Needed without <see cref="TlsCertFile"/>.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>The node's name: a DNS name in the generated certificate.</summary>
    public string NodeName { get; init; } = Environment.MachineName;

    /// <summary>The node's IP address: an IP address in the generated certificate, when set.</summary>
    public string? NodeIp { get; init; }

    /// <summary>How long a generated certificate is valid; it is regenerated at start when it expires within <see cref="CertificateRenewBefore"/>.</summary>
    public TimeSpan GeneratedCertificateLifetime { get; init; } = TimeSpan.FromDays(365);

    /// <summary>A generated certificate this close to its expiry is replaced at start.</summary>
    public TimeSpan CertificateRenewBefore { get; init; } = TimeSpan.FromDays(30);

    /// <summary>How often a followed log (<c>follow=true</c>) is checked for new lines and for the end of its run.</summary>
    public TimeSpan LogFollowPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Every problem with these settings, each naming the setting to change; empty when they are valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!IsIpAddress(Address))
        {
            errors.Add($"Address: \"{Address}\" is not an IP address.");
        }

        if (Port is < 0 or > 65535)
        {
            errors.Add($"Port: {Port} is outside 0–65535.");
        }

        if (TlsCertFile is null != TlsKeyFile is null)
        {
            errors.Add(TlsCertFile is null
                ? $"TlsKeyFile is set ({TlsKeyFile}) but TlsCertFile is not: give both, or neither to use a generated certificate."
                : $"TlsCertFile is set ({TlsCertFile}) but TlsKeyFile is not: give both, or neither to use a generated certificate.");
        }

        RequireFile(errors, nameof(TlsCertFile), TlsCertFile);
        RequireFile(errors, nameof(TlsKeyFile), TlsKeyFile);
        RequireFile(errors, nameof(ClientCaFile), ClientCaFile);
        RequireFile(errors, nameof(BearerTokenFile), BearerTokenFile);
        if (TlsCertFile is null && TlsKeyFile is null && string.IsNullOrWhiteSpace(DataDirectory))
        {
            errors.Add("DataDirectory: needed to keep the generated serving certificate when TlsCertFile and TlsKeyFile are not set.");
        }

        if (string.IsNullOrWhiteSpace(NodeName))
        {
            errors.Add("NodeName: must not be empty (it names the generated certificate).");
        }

        if (NodeIp is not null && !IsIpAddress(NodeIp))
        {
            errors.Add($"NodeIp: \"{NodeIp}\" is not an IP address.");
        }

        if (BearerTokens.Any(string.IsNullOrWhiteSpace))
        {
            errors.Add("BearerTokens: a token is empty.");
        }

        if (GeneratedCertificateLifetime <= CertificateRenewBefore)
        {
            errors.Add($"GeneratedCertificateLifetime ({GeneratedCertificateLifetime}) must be longer than CertificateRenewBefore ({CertificateRenewBefore}).");
        }

        if (TokenWebhookCacheTtl < TimeSpan.Zero || AuthorizedCacheTtl < TimeSpan.Zero || UnauthorizedCacheTtl < TimeSpan.Zero)
        {
            errors.Add("TokenWebhookCacheTtl, AuthorizedCacheTtl and UnauthorizedCacheTtl must not be negative.");
        }

        if (LogFollowPollInterval <= TimeSpan.Zero)
        {
            errors.Add($"LogFollowPollInterval: {LogFollowPollInterval} must be positive.");
        }

        return errors;
    }

    /// <summary>An IPv6 address, or an IPv4 address in its four-part dotted form (not the legacy "10.0.0").</summary>
    private static bool IsIpAddress(string text) =>
        IPAddress.TryParse(text, out var address)
        && (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 || text.Count(c => c == '.') == 3);

    private static void RequireFile(List<string> errors, string setting, string? path)
    {
        if (path is not null && !File.Exists(path))
        {
            errors.Add($"{setting}: file {path} does not exist.");
        }
    }
}
