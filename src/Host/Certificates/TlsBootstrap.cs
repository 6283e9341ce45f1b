using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using k8s;
using k8s.Exceptions;
using k8s.KubeConfigModels;
using Krustlet.Host.Configuration;
using Krustlet.Stages;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Certificates;

/// <summary>
/// The kubelet's TLS bootstrap (<c>--bootstrap-kubeconfig</c>): when the kubeconfig is missing or its
/// client certificate has expired, the bootstrap kubeconfig's credentials ask the cluster for the node's
/// client certificate, which is kept in the certificate directory, and a kubeconfig using it is written
/// (the bootstrap's cluster; user <c>default-auth</c> with the certificate file; context
/// <c>default-context</c>, as the kubelet writes it).
/// </summary>
internal static partial class TlsBootstrap
{
    /// <summary>Whether the kubeconfig can be used as it is: it reads, and its client certificate, if it names one, has not expired.</summary>
    public static bool IsUsable(string kubeconfig, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (!File.Exists(kubeconfig))
        {
            return false;
        }

        try
        {
            var configuration = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
            var pem = configuration.ClientCertificateFilePath is { } file ? File.ReadAllText(file)
                : configuration.ClientCertificateData is { } data ? System.Text.Encoding.ASCII.GetString(Convert.FromBase64String(data))
                : null;
            if (pem is null)
            {
                return true; // a token or another credential: nothing that expires here
            }

            using var certificate = X509Certificate2.CreateFromPem(pem);
            return certificate.NotAfter.ToUniversalTime() > time.GetUtcNow().UtcDateTime;
        }
        catch (Exception ex) when (ex is KubeConfigException or IOException or CryptographicException or FormatException or YamlDotNet.Core.YamlException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Reads the bootstrap kubeconfig.</summary>
    /// <exception cref="InvalidSettingsException">It is missing or is not a usable kubeconfig; the message says why.</exception>
    public static (KubernetesClientConfiguration Connection, ClusterEndpoint Cluster) ReadBootstrap(string path)
    {
        var setting = SettingsCatalog.BootstrapKubeconfig.Key;
        if (!File.Exists(path))
        {
            throw new InvalidSettingsException($"{setting}: {path} does not exist, and the kubeconfig it would bootstrap is missing or no longer valid.");
        }

        try
        {
            var file = KubernetesClientConfiguration.LoadKubeConfig(new FileInfo(path));
            var connection = KubernetesClientConfiguration.BuildConfigFromConfigObject(file);
            var context = file.Contexts?.FirstOrDefault(c => c.Name == file.CurrentContext)
                ?? throw new KubeConfigException($"its current context '{file.CurrentContext}' is not among its contexts");
            var cluster = file.Clusters?.FirstOrDefault(c => c.Name == context.ContextDetails?.Cluster)?.ClusterEndpoint
                ?? throw new KubeConfigException($"its context's cluster '{context.ContextDetails?.Cluster}' is not among its clusters");
            return (connection, cluster);
        }
        catch (Exception ex) when (ex is KubeConfigException or YamlDotNet.Core.YamlException or IOException or FormatException or CryptographicException or UnauthorizedAccessException or NullReferenceException)
        {
            throw new InvalidSettingsException($"{setting}: {path} is not a usable kubeconfig: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Makes sure <see cref="AgentSettings.Kubeconfig"/> can be used: when it is missing or its client
    /// certificate expired, bootstraps it (waiting, with retries and backoff, until the cluster issues the certificate).
    /// </summary>
    /// <returns>The node's client certificate, rotated from then on, when the kubeconfig uses the one in the certificate directory; null when it uses other credentials.</returns>
    /// <exception cref="InvalidSettingsException">The bootstrap kubeconfig is needed but missing or malformed.</exception>
    public static async Task<RotatingCertificate?> EnsureKubeconfigAsync(AgentSettings settings, TimeProvider time, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var kubeconfig = settings.Kubeconfig!;
        var logger = loggerFactory.CreateLogger(typeof(TlsBootstrap));
        var client = new RotatingCertificate(CertificateProfile.Client(settings.NodeName), settings.PkiDirectory, time, loggerFactory.CreateLogger<RotatingCertificate>());
        if (IsUsable(kubeconfig, time))
        {
            return UsesFile(kubeconfig, client.Path) ? client : null;
        }

        var (connection, cluster) = ReadBootstrap(settings.BootstrapKubeconfig!);
        LogBootstrapping(logger, kubeconfig, settings.BootstrapKubeconfig!);
        using (var bootstrap = new Kubernetes(connection))
        {
            (await client.ObtainAsync(new CertificateSigningRequester(bootstrap, time, loggerFactory.CreateLogger<CertificateSigningRequester>()), cancellationToken)).Dispose();
        }

        WriteKubeconfig(kubeconfig, cluster, client.Path);
        LogBootstrapped(logger, kubeconfig, client.Path);
        return client;
    }

    /// <summary>
    /// The connection the kubeconfig describes; with a rotating client certificate, each new TLS
    /// connection presents the one in the file at that moment, so a renewed certificate is used without
    /// restarting, while connections already open carry on.
    /// </summary>
    public static KubernetesClientConfiguration Connect(string? kubeconfig, RotatingCertificate? clientCertificate)
    {
        var configuration = Stages.Kubernetes.KubernetesConnection.Load(kubeconfig);
        if (clientCertificate is not null)
        {
            var current = new CurrentCertificate(clientCertificate);
            configuration.FirstMessageHandlerSetup = handler =>
            {
                if (handler is SocketsHttpHandler sockets)
                {
                    sockets.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => current.Get();
                    sockets.PooledConnectionLifetime = TimeSpan.FromMinutes(5); // idle connections move to the new certificate
                }
            };
        }

        return configuration;
    }

    /// <summary>Writes the kubeconfig through a temporary file and a rename (mode 0600).</summary>
    public static void WriteKubeconfig(string path, ClusterEndpoint cluster, string certificateFile)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        static string Quote(string value) => JsonSerializer.Serialize(value);
        var lines = new List<string> { "apiVersion: v1", "kind: Config", "clusters:", "- name: default-cluster", "  cluster:", $"    server: {Quote(cluster.Server)}" };
        if (cluster.CertificateAuthorityData is { } caData)
        {
            lines.Add($"    certificate-authority-data: {Quote(caData)}");
        }

        if (cluster.CertificateAuthority is { } caFile)
        {
            lines.Add($"    certificate-authority: {Quote(Path.GetFullPath(caFile))}");
        }

        if (cluster.SkipTlsVerify)
        {
            lines.Add("    insecure-skip-tls-verify: true");
        }

        if (cluster.TlsServerName is { } serverName)
        {
            lines.Add($"    tls-server-name: {Quote(serverName)}");
        }

        lines.AddRange([
            "users:", "- name: default-auth", "  user:", $"    client-certificate: {Quote(certificateFile)}", $"    client-key: {Quote(certificateFile)}",
            "contexts:", "- name: default-context", "  context: {cluster: default-cluster, user: default-auth, namespace: default}",
            "current-context: default-context", string.Empty,
        ]);
        PrivateDirectory.Create(Path.GetDirectoryName(Path.GetFullPath(path))!);
        KubeletApi.ServingCertificate.WritePem(path, string.Join('\n', lines), secret: true);
    }

    private static bool UsesFile(string kubeconfig, string certificateFile)
    {
        var configuration = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        return configuration.ClientCertificateFilePath is { } file && Path.GetFullPath(file) == Path.GetFullPath(certificateFile);
    }

    /// <summary>The client certificate as the file holds it now, reloaded when the rotation renews it.</summary>
    private sealed class CurrentCertificate
    {
        private readonly RotatingCertificate _source;
        private X509Certificate2? _loaded;

        public CurrentCertificate(RotatingCertificate source)
        {
            _source = source;
            source.Renewed += (_, _) => Volatile.Write(ref _loaded, null);
        }

        public X509Certificate2? Get()
        {
            var loaded = Volatile.Read(ref _loaded);
            if (loaded is null)
            {
                loaded = _source.LoadValid();
                Volatile.Write(ref _loaded, loaded);
            }

            return loaded;
        }
    }

    [LoggerMessage(4120, LogLevel.Information, "No usable kubeconfig at {Kubeconfig}: bootstrapping the node's client certificate with {Bootstrap}")]
    private static partial void LogBootstrapping(ILogger logger, string kubeconfig, string bootstrap);

    [LoggerMessage(4121, LogLevel.Information, "Bootstrapped: wrote {Kubeconfig}, using the client certificate {Certificate}")]
    private static partial void LogBootstrapped(ILogger logger, string kubeconfig, string certificate);
}
