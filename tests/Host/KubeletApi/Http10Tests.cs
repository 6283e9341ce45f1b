using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>HTTP/1.0 clients (ab, curl --http1.0) get answers: over ALPN "http/1.0" or none, with a Content-Length; an over-long URL gets 414 on every protocol.</summary>
[TestClass]
public sealed class Http10Tests
{
    public TestContext TestContext { get; set; } = null!;

    private async Task<string> RequestAsync(KubeletApiHost host, string request, SslApplicationProtocol? alpn)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(host.Server.Endpoint, TestContext.CancellationToken);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, presented, _, _) => presented?.GetCertHashString() == host.Server.Certificate.GetCertHashString());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = alpn is { } protocol ? [protocol] : null,
        }, TestContext.CancellationToken);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request), TestContext.CancellationToken);
        using var reader = new StreamReader(tls, Encoding.ASCII);
        return await reader.ReadToEndAsync(TestContext.CancellationToken); // HTTP/1.0 without keep-alive: the server closes after the answer
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task An_http_1_0_request_is_answered_with_or_without_alpn()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        foreach (var alpn in new SslApplicationProtocol?[] { new SslApplicationProtocol("http/1.0"), null })
        {
            var answer = await RequestAsync(host, "GET /healthz HTTP/1.0\r\n\r\n", alpn);
            StringAssert.StartsWith(answer, "HTTP/1.1 200 OK\r\n", $"ALPN {alpn}");
            StringAssert.Contains(answer, "Content-Length: 3\r\n");
            Assert.EndsWith("\r\n\r\nok\n", answer);

            var refused = await RequestAsync(host, "GET /pods HTTP/1.0\r\n\r\n", alpn);
            StringAssert.StartsWith(refused, "HTTP/1.1 401 Unauthorized\r\n");
            StringAssert.Contains(refused, "Content-Length: ");
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task An_over_long_url_is_answered_414_over_http_1_1_and_http_2()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var client = host.Authorized();
        var url = "/pods?x=" + new string('a', 60_000);
        foreach (var version in new[] { System.Net.HttpVersion.Version11, System.Net.HttpVersion.Version20 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url) { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await client.SendAsync(request, TestContext.CancellationToken);

            Assert.AreEqual(System.Net.HttpStatusCode.RequestUriTooLong, response.StatusCode, $"HTTP/{version}");
            Assert.AreEqual(version, response.Version);
        }

        using var fine = await client.GetAsync("/pods?x=" + new string('a', 2_000), TestContext.CancellationToken);
        Assert.AreEqual(System.Net.HttpStatusCode.OK, fine.StatusCode, "a long but bounded URL is served");
    }
}
