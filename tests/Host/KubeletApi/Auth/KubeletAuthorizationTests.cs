using System.Net;
using System.Text.Json.Nodes;
using k8s;
using Krustlet.Host.KubeletApi;
using Krustlet.Host.KubeletApi.Auth;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.KubeletApi.Auth;

/// <summary>
/// The kubelet API against the API emulator: bearer tokens reviewed by TokenReview, requests authorized
/// by SubjectAccessReview with the kubelet's caches on a fake clock, and anonymous requests.
/// </summary>
[TestClass]
public sealed class KubeletAuthorizationTests
{
    private const string SarPath = "POST /apis/authorization.k8s.io/v1/subjectaccessreviews";
    private const string TokenReviewPath = "POST /apis/authentication.k8s.io/v1/tokenreviews";

    public TestContext TestContext { get; set; } = null!;

    private sealed class Setup : IAsyncDisposable
    {
        private readonly Kubernetes _client;

        private Setup(ApiEmulator api, Kubernetes client, KubeletApiHost host, FakeTimeProvider time)
        {
            Api = api;
            _client = client;
            Host = host;
            Time = time;
        }

        public ApiEmulator Api { get; }

        public KubeletApiHost Host { get; }

        public FakeTimeProvider Time { get; }

        public static async Task<Setup> StartAsync(CancellationToken cancellationToken, Func<KubeletServerOptions, KubeletServerOptions>? configure = null)
        {
            var api = await ApiEmulator.StartAsync(cancellationToken);
            var client = new Kubernetes(new KubernetesClientConfiguration { Host = api.Url });
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
            var host = await KubeletApiHost.StartAsync(
                cancellationToken,
                time,
                o => (configure?.Invoke(o) ?? o) with { AuthorizationMode = KubeletAuthorizationMode.Webhook, AuthenticationTokenWebhook = true },
                new KubernetesReviews(client));
            return new Setup(api, client, host, time);
        }

        public int Count(string request) => Api.Requests.Count(r => r.StartsWith(request, StringComparison.Ordinal));

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            _client.Dispose();
            await Api.DisposeAsync();
        }
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Webhook_mode_serves_what_the_API_server_allows_and_answers_403_with_the_kubelets_text_otherwise()
    {
        await using var setup = await Setup.StartAsync(TestContext.CancellationToken);
        setup.Api.AddToken("alice-token", "alice", ["team-a"], "uid-alice");
        setup.Api.Allow(new AccessRule("alice", "get", "nodes", "proxy", "wasm-node"));
        using var alice = setup.Host.Client("alice-token");

        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status);
        var (status, body) = await GetAsync(alice, "/metrics");

        Assert.AreEqual(HttpStatusCode.Forbidden, status);
        var denial = JsonNode.Parse(body)!;
        Assert.AreEqual("Status", denial["kind"]!.GetValue<string>());
        Assert.AreEqual("Forbidden", denial["reason"]!.GetValue<string>());
        Assert.AreEqual(403, denial["code"]!.GetValue<int>());
        Assert.AreEqual("Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[metrics])", denial["message"]!.GetValue<string>());
        Assert.AreEqual(1, setup.Count(TokenReviewPath), "the token is reviewed once, then cached");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task The_review_names_the_user_its_groups_and_the_kubelets_attributes()
    {
        await using var setup = await Setup.StartAsync(TestContext.CancellationToken);
        using var apiServerCertificate = TestPki.CreateClient(setup.Host.ClientCa, "kube-apiserver-kubelet-client");
        using var apiServer = setup.Host.Client(clientCertificate: apiServerCertificate);
        setup.Api.Allow(new AccessRule("kube-apiserver-kubelet-client", "create", "nodes", "proxy"));
        using var exec = await apiServer.PostAsync(new Uri("/exec/default/web/main", UriKind.Relative), null, TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.BadRequest, exec.StatusCode, "allowed: the request reaches the endpoint");
        var (status, body) = await GetAsync(apiServer, "/stats/summary");
        Assert.AreEqual(HttpStatusCode.Forbidden, status);
        Assert.AreEqual("Forbidden (user=kube-apiserver-kubelet-client, verb=get, resource=nodes, subresource(s)=[stats])", JsonNode.Parse(body)!["message"]!.GetValue<string>());
        Assert.AreEqual(2, setup.Count(SarPath));
        Assert.AreEqual(0, setup.Count(TokenReviewPath), "a client certificate needs no TokenReview");
        var review = setup.Api.AccessReviews[0];
        Assert.AreEqual("kube-apiserver-kubelet-client", review["user"]!.GetValue<string>(), "the certificate's CN");
        CollectionAssert.AreEqual(new[] { "system:masters", "system:authenticated" }, review["groups"]!.AsArray().Select(g => g!.GetValue<string>()).ToArray(), "its O, then system:authenticated");
        var attributes = review["resourceAttributes"]!;
        Assert.AreEqual("create", attributes["verb"]!.GetValue<string>());
        Assert.AreEqual("nodes", attributes["resource"]!.GetValue<string>());
        Assert.AreEqual("proxy", attributes["subresource"]!.GetValue<string>());
        Assert.AreEqual("wasm-node", attributes["name"]!.GetValue<string>());
        Assert.AreEqual("v1", attributes["version"]!.GetValue<string>());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Allowed_answers_are_kept_five_minutes_and_denied_ones_thirty_seconds_on_the_clock()
    {
        await using var setup = await Setup.StartAsync(TestContext.CancellationToken);
        setup.Api.AddToken("alice-token", "alice");
        setup.Api.Allow(new AccessRule("alice"));
        using var alice = setup.Host.Client("alice-token");

        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status);
        setup.Api.ClearAccessRules();
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status, "allowed, and kept");
        Assert.AreEqual(1, setup.Count(SarPath));

        setup.Time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status, "still within 5 minutes");
        setup.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(HttpStatusCode.Forbidden, (await GetAsync(alice, "/pods")).Status, "expired: asked again, and now denied");
        Assert.AreEqual(2, setup.Count(SarPath));

        setup.Api.Allow(new AccessRule("alice"));
        setup.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.AreEqual(HttpStatusCode.Forbidden, (await GetAsync(alice, "/pods")).Status, "denied, and kept for 30 s");
        Assert.AreEqual(2, setup.Count(SarPath));
        setup.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status);
        Assert.AreEqual(3, setup.Count(SarPath));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Token_reviews_are_kept_two_minutes_for_valid_and_invalid_tokens()
    {
        await using var setup = await Setup.StartAsync(TestContext.CancellationToken);
        setup.Api.Allow(new AccessRule("group:system:authenticated"));
        using var bob = setup.Host.Client("bob-token");

        var (status, body) = await GetAsync(bob, "/pods");
        Assert.AreEqual(HttpStatusCode.Unauthorized, status);
        Assert.AreEqual("Unauthorized: the bearer token is not valid: invalid bearer token\n", body);
        setup.Api.AddToken("bob-token", "bob");
        setup.Time.Advance(TimeSpan.FromMinutes(2) - TimeSpan.FromSeconds(1));
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await GetAsync(bob, "/pods")).Status, "the invalid answer is kept");
        Assert.AreEqual(1, setup.Count(TokenReviewPath));

        setup.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(bob, "/pods")).Status, "reviewed again: bob, in system:authenticated");
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(bob, "/pods")).Status);
        Assert.AreEqual(2, setup.Count(TokenReviewPath));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Anonymous_requests_are_refused_unless_enabled_and_then_authorized_as_system_anonymous()
    {
        await using (var closed = await Setup.StartAsync(TestContext.CancellationToken))
        {
            using var anonymous = closed.Host.Client();
            var (status, body) = await GetAsync(anonymous, "/pods");
            Assert.AreEqual(HttpStatusCode.Unauthorized, status);
            StringAssert.Contains(body, "no credentials");
            Assert.AreEqual(0, closed.Count(SarPath));
        }

        await using var open = await Setup.StartAsync(TestContext.CancellationToken, o => o with { AnonymousAuth = true });
        using var nobody = open.Host.Client();
        var (denied, denial) = await GetAsync(nobody, "/pods");
        Assert.AreEqual(HttpStatusCode.Forbidden, denied);
        Assert.AreEqual("Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[proxy])", JsonNode.Parse(denial)!["message"]!.GetValue<string>());

        open.Api.Allow(new AccessRule("group:system:unauthenticated", "get", "nodes", "proxy"));
        open.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(nobody, "/pods")).Status);
        using var wrongToken = open.Host.Client("not-a-token");
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await GetAsync(wrongToken, "/pods")).Status, "credentials that fail are refused, not taken as anonymous");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_review_that_fails_is_an_authorization_error_and_is_not_kept()
    {
        await using var setup = await Setup.StartAsync(TestContext.CancellationToken);
        setup.Api.AddToken("alice-token", "alice");
        setup.Api.Allow(new AccessRule("alice"));
        setup.Api.Fail("POST", "subjectaccessreviews", 500);
        using var alice = setup.Host.Client("alice-token");

        var (status, body) = await GetAsync(alice, "/pods");
        Assert.AreEqual(HttpStatusCode.InternalServerError, status);
        Assert.AreEqual("Authorization error (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])", JsonNode.Parse(body)!["message"]!.GetValue<string>());
        Assert.AreEqual(HttpStatusCode.OK, (await GetAsync(alice, "/pods")).Status, "asked again at once");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Webhook_mode_without_an_API_server_is_refused_at_start()
    {
        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => KubeletApiHost.StartAsync(TestContext.CancellationToken, configure: o => o with { AuthorizationMode = KubeletAuthorizationMode.Webhook, AuthenticationTokenWebhook = true }));

        StringAssert.Contains(failure.Message, "AuthorizationMode: Webhook asks the API server");
        StringAssert.Contains(failure.Message, "AuthenticationTokenWebhook");
    }
}
