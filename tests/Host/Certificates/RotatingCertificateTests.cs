using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Krustlet.Host.Certificates;
using Krustlet.Host.Tests.KubeletApi;
using Microsoft.Extensions.Logging.Testing;

namespace Krustlet.Host.Tests.Certificates;

/// <summary>Certificates renewed at 70–90 % of their lifetime on a fake clock, swapped into the kubelet API without dropping connections.</summary>
[TestClass]
public sealed class RotatingCertificateTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void The_rotation_deadline_lies_between_70_and_90_percent_of_the_lifetime()
    {
        var time = new SignallingTimeProvider();
        time.SetUtcNow(DateTimeOffset.UtcNow);
        using var signer = new ClusterSigner(time);
        using var key = System.Security.Cryptography.ECDsa.Create();
        var start = time.GetUtcNow();
        using var certificate = new CertificateRequest("CN=x", key, System.Security.Cryptography.HashAlgorithmName.SHA256).Create(signer.Ca, start, start.AddHours(10), [1, 2, 3]);

        foreach (var (random, expected) in new[] { (0.0, 7.0), (0.5, 8.0), (0.999999, 9.0) })
        {
            var rotating = new RotatingCertificate(CertificateProfile.Client("n"), Path.GetTempPath(), time, new FakeLogger(), () => random);
            Assert.AreEqual(expected, (rotating.RotationDeadline(certificate) - start).TotalHours, 0.001);
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task The_serving_certificate_is_renewed_before_it_expires_and_swapped_in_for_new_connections_only()
    {
        await using var cluster = await CsrCluster.StartAsync(TestContext.CancellationToken);
        var (time, signer, requester) = (cluster.Time, cluster.Signer, cluster.Requester);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, time);
        var serving = new RotatingCertificate(CertificateProfile.Serving("wasm-node", "10.0.0.3"), Path.Combine(host.Root, "pki"), time, new FakeLogger(), () => 0.5);
        var renewals = Channel.CreateUnbounded<X509Certificate2>();
        serving.Renewed += (_, path) =>
        {
            host.Server.UseCertificate(X509Certificate2.CreateFromPemFile(path));
            renewals.Writer.TryWrite(X509Certificate2.CreateFromPemFile(path));
        };
        (await serving.ObtainAsync(requester, TestContext.CancellationToken)).Dispose();
        using var first = await renewals.Reader.ReadAsync(TestContext.CancellationToken);
        Assert.AreEqual(signer.Ca.Subject, first.Issuer);

        var connections = 0;
        var presented = new List<string>();
        using var kept = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                presented.Add(certificate!.GetCertHashString());
                return certificate.Issuer == signer.Ca.Subject; // the cluster's CA signed it
            },
            },
        })
        { BaseAddress = host.BaseAddress };
        kept.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", KubeletApiHost.Token);
        using (var before = await kept.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.OK, before.StatusCode);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        var waiting = time.NextTimer;
        var rotation = serving.RotateAsync(requester, stop.Token);
        await waiting.WaitAsync(TestContext.CancellationToken);

        // Issued backdated 5 minutes for an hour: 65 minutes, renewed at 80 % (random 0.5) = 47 minutes from now.
        time.Advance(TimeSpan.FromMinutes(46));
        Assert.IsFalse(renewals.Reader.TryRead(out _), "not yet");
        Assert.AreEqual(1, signer.Issued);
        time.Advance(TimeSpan.FromMinutes(1));
        using var second = await renewals.Reader.ReadAsync(TestContext.CancellationToken);

        Assert.AreNotEqual(first.Thumbprint, second.Thumbprint);
        Assert.AreEqual(signer.Ca.Subject, second.Issuer);
        Assert.IsLessThan(1.0, Math.Abs(((time.GetUtcNow() - TimeSpan.FromMinutes(5)).UtcDateTime - second.NotBefore.ToUniversalTime()).TotalSeconds), "issued at the renewal, on the clock");
        using (var after = await kept.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken))
        {
            Assert.AreEqual(HttpStatusCode.OK, after.StatusCode, "the open connection carries on");
        }

        Assert.AreEqual(1, connections, "the same connection, not a new one");
        CollectionAssert.AreEqual(new[] { first.GetCertHashString() }, presented, "one handshake, with the first certificate");
        Assert.AreEqual(second.Thumbprint, host.Server.Certificate.Thumbprint, "new connections get the renewed one");
        using (var onDisk = X509Certificate2.CreateFromPemFile(serving.Path))
        {
            Assert.AreEqual(second.Thumbprint, onDisk.Thumbprint);
        }

        await stop.CancelAsync();
        await Assert.ThrowsAsync<OperationCanceledException>(() => rotation);
    }
}
