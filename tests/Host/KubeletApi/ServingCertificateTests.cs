using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Krustlet.Host.KubeletApi;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>The server's TLS certificate: generated and kept, or configured; and the settings' validation.</summary>
[TestClass]
public sealed class ServingCertificateTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Without_a_configured_certificate_one_is_generated_into_the_data_directory_and_reused_while_valid()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var dataDirectory = Path.Combine(Directory.CreateTempSubdirectory("krustlet-kept-data-").FullName, "data");
        string thumbprint;
        await using (var first = await KubeletApiHost.StartAsync(TestContext.CancellationToken, time, o => o with { DataDirectory = dataDirectory }))
        {
            var (certFile, keyFile) = ServingCertificate.GeneratedPaths(dataDirectory);
            Assert.IsTrue(File.Exists(certFile) && File.Exists(keyFile));
            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile), "the key is readable by the agent only");
            using var onDisk = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            thumbprint = onDisk.Thumbprint;
            Assert.AreEqual(thumbprint, await PresentedThumbprintAsync(first.Server.Endpoint), "the server presents the generated certificate");
            var san = onDisk.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            CollectionAssert.AreEquivalent(new[] { "wasm-node", "localhost" }, san.EnumerateDnsNames().ToArray());
            CollectionAssert.AreEquivalent(new[] { IPAddress.Parse("10.0.0.3"), IPAddress.Loopback }, san.EnumerateIPAddresses().ToArray());
        }

        await using (var second = await KubeletApiHost.StartAsync(TestContext.CancellationToken, time, o => o with { DataDirectory = dataDirectory }))
        {
            Assert.AreEqual(thumbprint, second.Server.Certificate.Thumbprint, "a valid kept certificate is reused");
            Assert.AreEqual(thumbprint, await PresentedThumbprintAsync(second.Server.Endpoint));
        }

        time.Advance(TimeSpan.FromDays(340)); // within CertificateRenewBefore (30 days) of its one-year lifetime
        await using (var third = await KubeletApiHost.StartAsync(TestContext.CancellationToken, time, o => o with { DataDirectory = dataDirectory }))
        {
            Assert.AreNotEqual(thumbprint, third.Server.Certificate.Thumbprint, "a certificate about to expire is replaced");
            using var replaced = X509Certificate2.CreateFromPem(File.ReadAllText(ServingCertificate.GeneratedPaths(dataDirectory).Cert));
            Assert.AreEqual(third.Server.Certificate.Thumbprint, replaced.Thumbprint, "and the replacement is kept");
        }

        await using (var renamed = await KubeletApiHost.StartAsync(TestContext.CancellationToken, time, o => o with { DataDirectory = dataDirectory, NodeName = "renamed-node" }))
        {
            var san = renamed.Server.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            CollectionAssert.Contains(san.EnumerateDnsNames().ToArray(), "renamed-node", "a certificate for another node name is replaced");
        }

        Directory.Delete(Path.GetDirectoryName(dataDirectory)!, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_configured_certificate_and_key_are_served_and_nothing_is_generated()
    {
        var directory = Directory.CreateTempSubdirectory("krustlet-serving-").FullName;
        using var ca = TestPki.CreateCa("cluster CA");
        var (cert, key) = TestPki.WriteServing(ca, directory);
        using var expected = X509Certificate2.CreateFromPem(File.ReadAllText(cert));

        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, configure: o => o with { TlsCertFile = cert, TlsKeyFile = key });

        Assert.AreEqual(expected.Thumbprint, await PresentedThumbprintAsync(host.Server.Endpoint));
        Assert.IsFalse(Directory.Exists(Path.Combine(host.Root, "data", "pki")));
        Directory.Delete(directory, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Invalid_settings_are_refused_at_start_with_every_problem_named()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}");
        var server = new KubeletServer(
            new KubeletServerOptions { Address = "not-an-ip", Port = 70000, TlsKeyFile = missing + ".key", ClientCaFile = missing + ".ca", NodeIp = "10.0.0" },
            new TestPods(),
            Path.GetTempPath());

        var error = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => server.StartAsync(TestContext.CancellationToken));

        StringAssert.Contains(error.Message, "Address: \"not-an-ip\" is not an IP address.");
        StringAssert.Contains(error.Message, "Port: 70000 is outside 0–65535.");
        StringAssert.Contains(error.Message, $"TlsKeyFile is set ({missing}.key) but TlsCertFile is not");
        StringAssert.Contains(error.Message, $"TlsKeyFile: file {missing}.key does not exist.");
        StringAssert.Contains(error.Message, $"ClientCaFile: file {missing}.ca does not exist.");
        StringAssert.Contains(error.Message, "NodeIp: \"10.0.0\" is not an IP address.");
        await server.DisposeAsync();

        var notPem = Path.GetTempFileName();
        File.WriteAllText(notPem, "not a certificate");
        await using var garbage = new KubeletServer(new KubeletServerOptions { Port = 0, TlsCertFile = notPem, TlsKeyFile = notPem }, new TestPods(), Path.GetTempPath());
        var unreadable = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => garbage.StartAsync(TestContext.CancellationToken));
        StringAssert.Contains(unreadable.Message, $"TlsCertFile {notPem} and TlsKeyFile {notPem} do not hold a PEM certificate and its private key");
        File.Delete(notPem);

        Assert.AreEqual(
            "DataDirectory: needed to keep the generated serving certificate when TlsCertFile and TlsKeyFile are not set.",
            new KubeletServerOptions().Validate().Single());
    }

    /// <summary>The thumbprint of the certificate the server presents in a TLS handshake.</summary>
    private async Task<string> PresentedThumbprintAsync(IPEndPoint endpoint)
    {
        string? presented = null;
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, endpoint.Port, TestContext.CancellationToken);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
        {
            presented = certificate?.GetCertHashString();
            return presented is not null;
        });
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, TestContext.CancellationToken);
        return presented!;
    }
}
