using Krustlet.Stages.Kubernetes;

namespace Krustlet.Stages.Tests.Kubernetes;

[TestClass]
public sealed class ApiRateLimiterTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Counting : HttpMessageHandler
    {
        public int Sent { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Sent++;
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK));
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_burst_goes_at_once_then_requests_wait_for_the_qps()
    {
        var time = new SignallingTimeProvider();
        var counting = new Counting();
        using var limiter = new ApiRateLimiter(qps: 2, burst: 3, time) { InnerHandler = counting };
        using var client = new HttpClient(limiter);

        for (var i = 0; i < 3; i++)
        {
            await client.GetAsync(new Uri("http://api/api/v1/pods"), TestContext.CancellationToken);
        }

        var waiting = time.NextTimer;
        var fourth = client.GetAsync(new Uri("http://api/api/v1/pods"), TestContext.CancellationToken);
        await waiting.WaitAsync(TestContext.CancellationToken);
        Assert.AreEqual(3, counting.Sent, "the burst is spent");
        await client.GetAsync(new Uri("http://api/api/v1/pods?watch=true"), TestContext.CancellationToken);
        Assert.AreEqual(4, counting.Sent, "a watch is not rate limited");

        time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.IsFalse(fourth.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        (await fourth).Dispose();
        Assert.AreEqual(5, counting.Sent, "one token every half second at 2 QPS");
    }
}
