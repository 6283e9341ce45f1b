using System.Net;
using System.Net.Sockets;
using Krustlet.Stages.Run.Probes;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>The httpGet probe against a real server: status codes, headers, redirects, body cap, timeout, refused, HTTPS.</summary>
[TestClass]
public sealed class HttpProbeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public TestContext TestContext { get; set; } = null!;

    private static Uri Url(ProbeEndpoint server, string path = "/healthz", string scheme = "http", string host = "127.0.0.1")
    {
        Assert.IsTrue(HttpProbe.TryUrl(scheme, host, server.Port, path, out var url));
        return url;
    }

    private Task<ProbeResult> GetAsync(Uri url, params KeyValuePair<string, string>[] headers) =>
        HttpProbe.GetAsync(url, headers, Timeout, TestContext.CancellationToken);

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(200, "Success")]
    [DataRow(204, "Success")]
    [DataRow(399, "Warning", DisplayName = "a 3xx not followed is a success with a warning")]
    [DataRow(400, "Failure")]
    [DataRow(500, "Failure")]
    public async Task Success_is_200_to_399(int status, string outcome)
    {
        var expected = Enum.Parse<ProbeOutcome>(outcome);
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(status, Body: "the body");

        var result = await GetAsync(Url(server));

        Assert.AreEqual(expected, result.Outcome);
        if (expected == ProbeOutcome.Failure)
        {
            Assert.AreEqual($"HTTP probe failed with statuscode: {status}", result.Message, "the kubelet never quotes the body of a failure");
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_request_carries_the_kubelets_headers_and_the_probes()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);

        await GetAsync(Url(server, "/healthz?full=1"), new("X-Custom", "yes"), new("Host", "web.example"));
        var request = await server.NextAsync(TestContext.CancellationToken);

        Assert.AreEqual("/healthz?full=1", request.Path);
        Assert.AreEqual("kube-probe/1.31", request.Headers["User-Agent"]);
        Assert.AreEqual("*/*", request.Headers["Accept"]);
        Assert.AreEqual("yes", request.Headers["X-Custom"]);
        Assert.AreEqual("web.example", request.Headers["Host"]);
        Assert.AreEqual("close", request.Headers["Connection"], "no keep-alive, as the kubelet");
        Assert.IsFalse(request.Headers.ContainsKey("Accept-Encoding"), "no compression");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_probes_own_User_Agent_and_Accept_replace_the_kubelets()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);

        await GetAsync(Url(server), new("User-Agent", "mine/1"), new("Accept", "application/json"));
        var request = await server.NextAsync(TestContext.CancellationToken);

        Assert.AreEqual("mine/1", request.Headers["User-Agent"]);
        Assert.AreEqual("application/json", request.Headers["Accept"]);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_redirect_to_the_same_host_is_followed()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Answer("/healthz", new ProbeAnswer(302, Location: "/ready"));
        server.Answer("/ready", 500);

        var result = await GetAsync(Url(server), KeyValuePair.Create("X-Custom", "kept"));

        Assert.AreEqual(ProbeResult.Failure("HTTP probe failed with statuscode: 500"), result, "the redirect's target decides");
        Assert.AreEqual("/healthz", (await server.NextAsync(TestContext.CancellationToken)).Path);
        var followed = await server.NextAsync(TestContext.CancellationToken);
        Assert.AreEqual("/ready", followed.Path);
        Assert.AreEqual("kept", followed.Headers["X-Custom"], "headers go along to the same host");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_redirect_to_another_host_is_a_success_with_a_warning_and_is_not_followed()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Answer("/healthz", new ProbeAnswer(301, Location: "http://localhost:{port}/elsewhere", Body: "moved"));

        var result = await GetAsync(Url(server));

        Assert.AreEqual(ProbeResult.Warning("Probe terminated redirects, Response body: moved"), result);
        Assert.HasCount(1, server.All, "localhost is another host name than 127.0.0.1, even on the same port");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_redirect_loop_stops_after_ten_requests_and_fails()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(302, Location: "/healthz");

        var result = await GetAsync(Url(server));

        Assert.AreEqual(ProbeResult.Failure($"Get \"http://127.0.0.1:{server.Port}/healthz\": stopped after 10 redirects"), result);
        Assert.HasCount(10, server.All);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task At_most_10_KiB_of_the_body_is_read()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(300, Body: new string('x', 50_000));

        var result = await GetAsync(Url(server));

        Assert.AreEqual(ProbeOutcome.Warning, result.Outcome);
        Assert.AreEqual("Probe terminated redirects, Response body: ".Length + (10 * 1024), result.Message.Length);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_server_that_does_not_answer_within_the_timeout_fails_the_probe()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken);
        server.Default = new ProbeAnswer(200, Hang: true);
        var url = Url(server);

        var result = await HttpProbe.GetAsync(url, [], TimeSpan.FromMilliseconds(200), TestContext.CancellationToken);

        Assert.AreEqual(ProbeResult.Failure($"Get \"{url.AbsoluteUri}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"), result);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_closed_port_is_a_refused_dial_in_Gos_words()
    {
        var port = ClosedPort();
        Assert.IsTrue(HttpProbe.TryUrl("http", "127.0.0.1", port, "/healthz", out var url));

        var result = await GetAsync(url);

        Assert.AreEqual(ProbeResult.Failure($"Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"), result);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task HTTPS_is_probed_without_verifying_the_certificate()
    {
        await using var server = await ProbeEndpoint.StartAsync(TimeProvider.System, TestContext.CancellationToken, https: true);

        var result = await GetAsync(Url(server, scheme: "https"));

        Assert.AreEqual(ProbeResult.Success("ok"), result);
    }

    /// <summary>A port nothing listens on (bound, then released).</summary>
    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
