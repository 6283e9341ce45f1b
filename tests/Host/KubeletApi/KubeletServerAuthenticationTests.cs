using System.Net;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>Who may call the kubelet API: client certificates of the client CA and configured bearer tokens.</summary>
[TestClass]
public sealed class KubeletServerAuthenticationTests
{
    private static readonly string[] ProtectedPaths = ["/pods", "/metrics", "/containerLogs/default/web/main", "/no/such/path"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Healthz_is_open_and_every_other_path_refuses_anonymous_callers_with_401()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var anonymous = host.Client();

        using var health = await anonymous.GetAsync(new Uri("/healthz", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, health.StatusCode);
        Assert.AreEqual("ok\n", await health.Content.ReadAsStringAsync(TestContext.CancellationToken));

        foreach (var path in ProtectedPaths)
        {
            using var response = await anonymous.GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);
            Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode, path);
            StringAssert.Contains(await response.Content.ReadAsStringAsync(TestContext.CancellationToken), "no credentials: present a client certificate or an Authorization: Bearer token", path);
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_configured_bearer_token_is_accepted_on_every_path_and_a_wrong_one_refused()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        host.Pods.Set(TestPods.Pod("web", "uid-web", ["main"]));
        Directory.CreateDirectory(host.ContainerLogDirectory(host.Pods.Pods()[0], "main"));
        File.WriteAllText(Path.Combine(host.ContainerLogDirectory(host.Pods.Pods()[0], "main"), "0.log"), "2026-01-02T03:04:05.000000000Z stdout F hi\n");
        using var right = host.Client(KubeletApiHost.Token);
        using var wrong = host.Client("not-the-token");

        foreach (var path in ProtectedPaths)
        {
            using var accepted = await right.GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);
            Assert.AreEqual(path == "/no/such/path" ? HttpStatusCode.NotFound : HttpStatusCode.OK, accepted.StatusCode, path);
            using var refused = await wrong.GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);
            Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode, path);
            Assert.AreEqual("Unauthorized: the bearer token is not valid\n", await refused.Content.ReadAsStringAsync(TestContext.CancellationToken));
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_client_certificate_of_the_client_CA_is_accepted_and_one_of_another_CA_refused()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var apiServerCertificate = TestPki.CreateClient(host.ClientCa, "kube-apiserver-kubelet-client");
        using var otherCa = TestPki.CreateCa("someone else's CA");
        using var strangerCertificate = TestPki.CreateClient(otherCa, "kube-apiserver-kubelet-client");
        using var apiServer = host.Client(clientCertificate: apiServerCertificate);
        using var stranger = host.Client(clientCertificate: strangerCertificate);

        using var pods = await apiServer.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, pods.StatusCode);
        using var metrics = await apiServer.GetAsync(new Uri("/metrics", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, metrics.StatusCode);
        using var unknownPod = await apiServer.GetAsync(new Uri("/containerLogs/default/web/main", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.NotFound, unknownPod.StatusCode, "authenticated: the request reaches the handler");

        using var refused = await stranger.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.AreEqual("Unauthorized: the client certificate is not signed by a trusted client CA\n", await refused.Content.ReadAsStringAsync(TestContext.CancellationToken));
        using var health = await stranger.GetAsync(new Uri("/healthz", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, health.StatusCode);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Tokens_are_read_from_the_token_file_and_other_schemes_are_refused()
    {
        var tokens = Path.GetTempFileName();
        File.WriteAllLines(tokens, ["# tokens for the kubelet API", string.Empty, "  from-the-file  "]);
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, configure: o => o with { BearerTokenFile = tokens });
        File.Delete(tokens);
        using var fromFile = host.Client("from-the-file");
        using var basic = host.Client();
        basic.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", "dXNlcjpwYXNz");

        using var accepted = await fromFile.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, accepted.StatusCode);
        using var refused = await basic.GetAsync(new Uri("/pods", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(TestContext.CancellationToken), "only Bearer tokens are accepted");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Unknown_paths_are_404_and_known_paths_with_another_method_405_for_authenticated_callers()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var client = host.Authorized();

        using var unknown = await client.GetAsync(new Uri("/no-such-endpoint/default/web", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.AreEqual("404 page not found: GET /no-such-endpoint/default/web\n", await unknown.Content.ReadAsStringAsync(TestContext.CancellationToken));
        using var post = await client.PostAsync(new Uri("/pods", UriKind.Relative), null, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.MethodNotAllowed, post.StatusCode, "as the kubelet's go-restful answers");
        Assert.AreEqual("GET", post.Content.Headers.Allow.Single());
    }
}
