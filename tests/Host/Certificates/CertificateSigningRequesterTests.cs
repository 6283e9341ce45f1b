using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Krustlet.Host.Certificates;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Tests.Certificates;

/// <summary>CertificateSigningRequests against the API emulator: their shape, a denied one retried with backoff.</summary>
[TestClass]
public sealed class CertificateSigningRequesterTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task The_requests_carry_the_kubelets_signers_subjects_usages_and_SANs_and_give_the_issued_certificates()
    {
        await using var cluster = await CsrCluster.StartAsync(TestContext.CancellationToken);
        var (api, signer, requester) = (cluster.Api, cluster.Signer, cluster.Requester);

        using var clientCertificate = await requester.RequestAsync(CertificateProfile.Client("wasm-node"), TestContext.CancellationToken);
        using var servingCertificate = await requester.RequestAsync(CertificateProfile.Serving("wasm-node", "10.0.0.3"), TestContext.CancellationToken);

        var csrs = api.All(ApiEmulator.CsrResource).OrderBy(c => c["metadata"]!["resourceVersion"]!.GetValue<string>(), StringComparer.Ordinal).ToList();
        Assert.HasCount(2, csrs);
        StringAssert.StartsWith(csrs[0]["metadata"]!["name"]!.GetValue<string>(), "csr-");
        Assert.AreEqual("kubernetes.io/kube-apiserver-client-kubelet", csrs[0]["spec"]!["signerName"]!.GetValue<string>());
        CollectionAssert.AreEqual(new[] { "digital signature", "client auth" }, csrs[0]["spec"]!["usages"]!.AsArray().Select(u => u!.GetValue<string>()).ToArray());
        Assert.AreEqual("kubernetes.io/kubelet-serving", csrs[1]["spec"]!["signerName"]!.GetValue<string>());
        CollectionAssert.AreEqual(new[] { "digital signature", "server auth" }, csrs[1]["spec"]!["usages"]!.AsArray().Select(u => u!.GetValue<string>()).ToArray());
        var request = CertificateRequest.LoadSigningRequestPem(Encoding.ASCII.GetString(Convert.FromBase64String(csrs[1]["spec"]!["request"]!.GetValue<string>())), System.Security.Cryptography.HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        Assert.AreEqual("O=system:nodes, CN=system:node:wasm-node", request.SubjectName.Name);

        Assert.AreEqual("O=system:nodes, CN=system:node:wasm-node", clientCertificate.Subject);
        Assert.IsTrue(clientCertificate.HasPrivateKey);
        Assert.AreEqual(signer.Ca.Subject, clientCertificate.Issuer);
        var san = servingCertificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        CollectionAssert.AreEqual(new[] { "wasm-node" }, san.EnumerateDnsNames().ToArray());
        CollectionAssert.AreEqual(new[] { IPAddress.Parse("10.0.0.3") }, san.EnumerateIPAddresses().ToArray());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_denied_request_is_logged_with_its_reason_and_asked_again_after_a_backoff()
    {
        await using var cluster = await CsrCluster.StartAsync(TestContext.CancellationToken, autoSign: false);
        var (api, time, signer, logger, requester) = (cluster.Api, cluster.Time, cluster.Signer, cluster.Logger, cluster.Requester);

        var request = requester.RequestAsync(CertificateProfile.Client("wasm-node"), TestContext.CancellationToken);
        var first = await api.WaitForCreatedAsync(ApiEmulator.CsrResource, 1, TestContext.CancellationToken);
        var backoff = time.NextTimer; // the request's own wait deadline was set before it was created
        api.Deny(first, "NotAllowed", "nodes must be approved by hand");
        await backoff.WaitAsync(TestContext.CancellationToken);

        var failure = logger.Collector.GetSnapshot().Single(r => r.Level == LogLevel.Error);
        StringAssert.Contains(failure.Message, $"certificate signing request {first} was denied: NotAllowed: nodes must be approved by hand");
        StringAssert.Contains(failure.Message, "asking again in");
        Assert.IsFalse(request.IsCompleted, "no crash, no give-up: it waits to ask again");

        time.Advance(TimeSpan.FromSeconds(3)); // past 2 s with 10 % jitter
        var second = await api.WaitForCreatedAsync(ApiEmulator.CsrResource, 2, TestContext.CancellationToken);
        Assert.AreNotEqual(first, second, "a fresh request");
        api.Approve(second, signer);
        using var certificate = await request;
        Assert.AreEqual("O=system:nodes, CN=system:node:wasm-node", certificate.Subject);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_request_deleted_while_pending_is_an_error_saying_so()
    {
        await using var cluster = await CsrCluster.StartAsync(TestContext.CancellationToken, autoSign: false);
        var (api, requester) = (cluster.Api, cluster.Requester);

        var request = requester.RequestOnceAsync(CertificateProfile.Client("wasm-node"), TestContext.CancellationToken);
        var name = await api.WaitForCreatedAsync(ApiEmulator.CsrResource, 1, TestContext.CancellationToken);
        await api.WatchesOpened(1);
        api.Remove(ApiEmulator.CsrResource, string.Empty, name);

        var failure = await Assert.ThrowsExactlyAsync<CertificateRequestException>(() => request);
        StringAssert.Contains(failure.Message, $"certificate signing request {name} was deleted before its certificate was issued");
    }
}
