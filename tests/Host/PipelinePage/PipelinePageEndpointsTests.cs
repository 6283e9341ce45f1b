using System.Net;
using System.Text.Json;

namespace Krustlet.Host.Tests.PipelinePage;

[TestClass]
public sealed class PipelinePageEndpointsTests
{
    private const string Token = "page-token";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task On_the_kubelet_port_the_page_is_behind_its_authentication_and_pods_come_a_page_at_a_time()
    {
        var ct = TestContext.CancellationToken;
        await using var agent = await PipelinePageHarness.StartAsync(onKubeletPort: true, Token, ct);
        StringAssert.StartsWith(agent.Announcement, $"pipeline page: https://127.0.0.1:{agent.Api!.Endpoint.Port}/pipeline");
        await agent.AddPodsAsync("hello", "hello", 7, "Never", ct);

        var certificate = agent.Api.Certificate.GetCertHashString();
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate };
        using var client = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{agent.Api.Endpoint.Port}") };

        using (var refused = await client.GetAsync("/pipeline", ct))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
        StringAssert.Contains(await client.GetStringAsync("/pipeline", ct), "<svg id=\"graph\"");
        StringAssert.Contains(await client.GetStringAsync("/pipeline/app.js", ct), "EventSource");

        // Seven pods, three a page: three pages, the last one short.
        await agent.Runtime.Pipeline.WaitForIdleAsync(ct);
        using var first = JsonDocument.Parse(await client.GetStringAsync("/pipeline/pods?page=0&size=3", ct));
        Assert.AreEqual(7, first.RootElement.GetProperty("total").GetInt32());
        Assert.AreEqual(3, first.RootElement.GetProperty("pods").GetArrayLength());
        using var last = JsonDocument.Parse(await client.GetStringAsync("/pipeline/pods?page=2&size=3", ct));
        Assert.AreEqual(1, last.RootElement.GetProperty("pods").GetArrayLength());
        using var capped = JsonDocument.Parse(await client.GetStringAsync("/pipeline/pods?size=100000", ct));
        Assert.AreEqual(200, capped.RootElement.GetProperty("size").GetInt32(), "a page never holds more than 200 pods");

        using (var gone = await client.GetAsync("/pipeline/pods/no-such-uid", ct))
        {
            Assert.AreEqual(HttpStatusCode.NotFound, gone.StatusCode);
        }
    }
}
