using k8s;
using Krustlet.Host.Certificates;
using Microsoft.Extensions.Logging.Testing;

namespace Krustlet.Host.Tests.Certificates;

/// <summary>The API emulator, a client of it, a fake clock at the real now, a cluster CA on that clock, and a requester of certificates from it.</summary>
internal sealed class CsrCluster : IAsyncDisposable
{
    private CsrCluster(ApiEmulator api, Kubernetes client, SignallingTimeProvider time, ClusterSigner signer)
    {
        Api = api;
        Client = client;
        Time = time;
        Signer = signer;
        Requester = new CertificateSigningRequester(client, time, Logger);
    }

    public ApiEmulator Api { get; }

    public Kubernetes Client { get; }

    public SignallingTimeProvider Time { get; }

    public ClusterSigner Signer { get; }

    public FakeLogger Logger { get; } = new();

    public CertificateSigningRequester Requester { get; }

    /// <param name="cancellationToken">Cancels the emulator's start.</param>
    /// <param name="autoSign">Whether every request is approved and issued as it is created (else the test decides).</param>
    /// <param name="duration">How long issued certificates are valid.</param>
    public static async Task<CsrCluster> StartAsync(CancellationToken cancellationToken, bool autoSign = true, TimeSpan? duration = null)
    {
        var api = await ApiEmulator.StartAsync(cancellationToken);
        var time = new SignallingTimeProvider();
        time.SetUtcNow(DateTimeOffset.UtcNow);
        var signer = new ClusterSigner(time) { Duration = duration ?? TimeSpan.FromHours(1) };
        api.AutoSigner = autoSign ? signer : null;
        return new CsrCluster(api, new Kubernetes(new KubernetesClientConfiguration { Host = api.Url }), time, signer);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Signer.Dispose();
        await Api.DisposeAsync();
    }
}
