using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using k8s.Models;
using Krustlet.Host.KubeletApi;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>The node's pods as a test sets them.</summary>
internal sealed class TestPods : IKubeletPods
{
    private volatile IReadOnlyList<V1Pod> _pods = [];

    public IReadOnlyList<V1Pod> Pods() => _pods;

    public void Set(params V1Pod[] pods) => _pods = pods;

    public static V1Pod Pod(string name, string uid, string[] containers, Func<string, V1ContainerState>? state = null, int restartCount = 0) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = uid },
        Spec = new V1PodSpec { Containers = [.. containers.Select(c => new V1Container { Name = c, Image = $"{c}:v1" })] },
        Status = new V1PodStatus
        {
            Phase = "Running",
            ContainerStatuses = [.. containers.Select(c => new V1ContainerStatus
            {
                Name = c,
                Image = $"{c}:v1",
                ImageID = "sha256:00",
                RestartCount = restartCount,
                Ready = true,
                State = state?.Invoke(c) ?? Running,
            })],
        },
    };

    public static V1ContainerState Running => new() { Running = new V1ContainerStateRunning { StartedAt = DateTime.UtcNow } };

    public static V1ContainerState Terminated => new() { Terminated = new V1ContainerStateTerminated { ExitCode = 0, Reason = "Completed" } };
}

/// <summary>Certificates made in the test: a CA, leaf certificates it signs, and PEM files.</summary>
internal static class TestPki
{
    public static X509Certificate2 CreateCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>A client certificate (clientAuth) signed by <paramref name="ca"/>, with its key, usable by SslStream.</summary>
    public static X509Certificate2 CreateClient(X509Certificate2 ca, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, O=system:masters", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), RandomNumberGenerator.GetBytes(8));
        using var withKey = signed.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A serving certificate for localhost signed by <paramref name="ca"/>, written as PEM files.</summary>
    public static (string Cert, string Key) WriteServing(X509Certificate2 ca, string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var request = new CertificateRequest("CN=configured-kubelet", key, HashAlgorithmName.SHA384);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), RandomNumberGenerator.GetBytes(8));
        var cert = Path.Combine(directory, "serving.crt");
        var keyFile = Path.Combine(directory, "serving.key");
        File.WriteAllText(cert, signed.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (cert, keyFile);
    }

    public static string WritePem(X509Certificate2 certificate, string path)
    {
        File.WriteAllText(path, certificate.ExportCertificatePem());
        return path;
    }
}

/// <summary>A started kubelet API with a temporary data directory and log root, a client CA and a token.</summary>
internal sealed class KubeletApiHost : IAsyncDisposable
{
    public const string Token = "the-right-token";

    private KubeletApiHost(string root, KubeletServer server, TestPods pods, X509Certificate2 clientCa)
    {
        Root = root;
        Server = server;
        Pods = pods;
        ClientCa = clientCa;
    }

    public string Root { get; }

    public string LogRoot => Path.Combine(Root, "logs");

    public KubeletServer Server { get; }

    public TestPods Pods { get; }

    public X509Certificate2 ClientCa { get; }

    public Uri BaseAddress => new($"https://127.0.0.1:{Server.Endpoint.Port}");

    public static async Task<KubeletApiHost> StartAsync(CancellationToken cancellationToken, TimeProvider? time = null, Func<KubeletServerOptions, KubeletServerOptions>? configure = null, Krustlet.Host.KubeletApi.Auth.IKubeletReviews? reviews = null)
    {
        var root = Directory.CreateTempSubdirectory("krustlet-kubelet-api-").FullName;
        var ca = TestPki.CreateCa("test client CA");
        var options = new KubeletServerOptions
        {
            Address = "127.0.0.1",
            Port = 0,
            DataDirectory = Path.Combine(root, "data"),
            NodeName = "wasm-node",
            NodeIp = "10.0.0.3",
            ClientCaFile = TestPki.WritePem(ca, Path.Combine(root, "client-ca.crt")),
            BearerTokens = new HashSet<string>(StringComparer.Ordinal) { Token },
            LogFollowPollInterval = TimeSpan.FromMilliseconds(20),
        };
        var pods = new TestPods();
        var server = new KubeletServer(configure?.Invoke(options) ?? options, pods, Path.Combine(root, "logs"), time, LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(LogLevel.Warning)), reviews);
        await server.StartAsync(cancellationToken);
        return new KubeletApiHost(root, server, pods, ca);
    }

    /// <summary>A client that trusts exactly the server's certificate, with a bearer token or a client certificate if given.</summary>
    public HttpClient Client(string? token = null, X509Certificate2? clientCertificate = null)
    {
        var serverCertificate = Server.Certificate;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
                ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
            },
        };
        var client = new HttpClient(handler) { BaseAddress = BaseAddress };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    public HttpClient Authorized() => Client(Token);

    /// <summary>The directory the run stage writes a container's logs to.</summary>
    public string ContainerLogDirectory(V1Pod pod, string container) =>
        Path.Combine(LogRoot, $"{pod.Metadata.NamespaceProperty}_{pod.Metadata.Name}_{pod.Metadata.Uid}", container);

    /// <summary>A real CRI log writer for a container's run.</summary>
    public CriLogWriter Writer(V1Pod pod, string container, int run, TimeProvider time, LogRotationOptions? rotation = null) =>
        new(Path.Combine(ContainerLogDirectory(pod, container), $"{run}.log"), rotation ?? LogRotationOptions.Default, time);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        ClientCa.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
