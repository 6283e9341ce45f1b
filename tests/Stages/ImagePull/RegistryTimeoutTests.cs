using System.Net;
using System.Net.Sockets;
using System.Text;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>
/// A registry that accepts the connection and never answers, or stalls in the middle of a blob, fails
/// the request with a reason once the response or idle timeout passes on the injected clock.
/// </summary>
[TestClass]
public sealed class RegistryTimeoutTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A loopback server that reads each request and then does what the test says (or nothing).</summary>
    private sealed class SilentRegistry : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _accepted = [];
        private readonly Task _accepting;
        private readonly CancellationTokenSource _stop = new();

        public SilentRegistry(string? answer)
        {
            _listener.Start();
            _accepting = AcceptAsync(answer);
        }

        public string Host => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public TaskCompletionSource RequestRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private async Task AcceptAsync(string? answer)
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _accepted.Add(client);
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    var read = 0;
                    while (!Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        read += await stream.ReadAsync(buffer.AsMemory(read), _stop.Token);
                    }

                    if (answer is not null)
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(answer), _stop.Token);
                    }

                    RequestRead.TrySetResult(); // and then: silence, the connection held open
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _accepted.ForEach(c => c.Dispose());
            _stop.Dispose();
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_registry_that_never_answers_fails_the_request_after_the_response_timeout()
    {
        await using var registry = new SilentRegistry(answer: null);
        var time = new SignallingTimeProvider();
        var timer = time.NextTimer;
        using var client = new OciRegistryClient(new RegistryOptions { ResponseTimeout = TimeSpan.FromSeconds(60) }, time: time);

        var manifest = client.GetManifestAsync(registry.Host, "app", "v1", null, TestContext.CancellationToken);
        await timer.WaitAsync(TestContext.CancellationToken);
        await registry.RequestRead.Task.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.IsFalse(manifest.IsCompleted, "not before the timeout");
        time.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsExactlyAsync<RegistryException>(() => manifest.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual($"{registry.Host} did not answer GET /v2/app/manifests/v1 within 60s (Registries:ResponseTimeout)", error.Message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_blob_that_stalls_fails_after_the_idle_timeout()
    {
        await using var registry = new SilentRegistry("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nfirst bytes");
        var time = new SignallingTimeProvider();
        using var client = new OciRegistryClient(new RegistryOptions { IdleTimeout = TimeSpan.FromSeconds(30) }, time: time);
        await using var blob = await client.OpenBlobAsync(registry.Host, "app", "sha256:" + new string('0', 64), null, TestContext.CancellationToken);

        var buffer = new byte[1000];
        var read = await blob.ReadAsync(buffer, TestContext.CancellationToken);
        Assert.AreEqual("first bytes", Encoding.ASCII.GetString(buffer, 0, read));

        var timer = time.NextTimer;
        var next = blob.ReadAsync(buffer, TestContext.CancellationToken).AsTask();
        await timer.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(30));
        var error = await Assert.ThrowsExactlyAsync<RegistryException>(() => next.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual($"{registry.Host} sent nothing of blob app@sha256:{new string('0', 64)} for 30s (Registries:IdleTimeout)", error.Message);
    }
}
