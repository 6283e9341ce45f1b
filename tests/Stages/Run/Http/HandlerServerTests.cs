using System.Net;
using System.Net.Sockets;
using System.Text;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run;
using Krustlet.Stages.Run.Http;

namespace Krustlet.Stages.Tests.Run.Http;

/// <summary>
/// HTTP handler runs against a real C handler (Fixtures/wasm/http_handler.c) on the executor, served by
/// the agent's Kestrel listener on loopback and called with HttpClient: every request a fresh instance,
/// CGI in and out, and every failure a clear status.
/// </summary>
[TestClass]
public sealed class HandlerServerTests
{
    private static WasmEngineHost _host = null!;
    private static CompiledArtifact _handler = null!;
    private static string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task Build(TestContext context)
    {
        _root = Directory.CreateTempSubdirectory("krustlet-http-").FullName;
        _host = new WasmEngineHost(new WasmEngineOptions { PoolSlots = 64 });
        var path = WasmFixtures.C("http_handler");
        _handler = await new CompileCache(_host, Path.Combine(_root, "cache")).GetAsync(WasmFixtures.Digest(path), path, context.CancellationToken);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        _host.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A handler run in the pool, serving on a free loopback port until disposed.</summary>
    internal sealed class Serving : IAsyncDisposable
    {
        public required ExecutorPool Pool { get; init; }
        public required ContainerControl Control { get; init; }
        public required Task<ContainerExit> Run { get; init; }
        public required int Port { get; init; }
        public required string LogPath { get; init; }
        public HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

        public Uri Url(string pathAndQuery) => new($"http://127.0.0.1:{Port}{pathAndQuery}");

        public string[] Log(string stream) =>
            [.. File.ReadAllLines(LogPath).Select(l => l.Split(' ', 4)).Where(p => p[1] == stream).Select(p => p[3])];

        public async ValueTask DisposeAsync()
        {
            Control.Kill(KillCause.Stopped("the test is over"));
            await Run;
            Client.Dispose();
            Pool.Dispose();
        }
    }

    private async Task<Serving> Serve(HttpHandlerOptions? options = null, TimeSpan? timeout = null, int? concurrency = null, TimeSpan? grace = null, string[]? env = null, Mount[]? mounts = null)
    {
        var port = FreePort();
        var pool = new ExecutorPool(_host, 8) { Http = options ?? new HttpHandlerOptions() };
        var control = new ContainerControl(TimeProvider.System);
        var logPath = Path.Combine(_root, "logs", $"{Guid.NewGuid():N}.log");
        var launch = new ContainerLaunch("web", _handler, ["handler.wasm"], [.. (env ?? []).Select(e => new KeyValuePair<string, string>(e.Split('=')[0], e.Split('=')[1]))], mounts ?? [], null, logPath, LogRotationOptions.Default)
        {
            Http = new HttpHandlerLaunch(port, timeout, concurrency, grace ?? TimeSpan.FromSeconds(5), "default", "web-pod"),
        };
        var run = pool.RunAsync(launch, control, TestContext.CancellationToken);
        await Task.WhenAny(control.Serving, run).WaitAsync(TestContext.CancellationToken);
        Assert.IsTrue(control.IsServing, run.IsCompleted ? $"the handler did not start: {run.Result}" : "not serving");
        return new Serving { Pool = pool, Control = control, Run = run, Port = port, LogPath = logPath };
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_request_is_CGI_in_and_out_method_path_query_headers_and_body()
    {
        var volume = Directory.CreateDirectory(Path.Combine(_root, "volumes", Guid.NewGuid().ToString("N"))).FullName;
        await File.WriteAllTextAsync(Path.Combine(volume, "message"), "from a volume\n", TestContext.CancellationToken);
        await using var web = await Serve(env: ["GREETING=hi"], mounts: [new Mount(volume, "/config", ReadOnly: true)]);
        using var request = new HttpRequestMessage(HttpMethod.Post, web.Url("/echo?a=1&b=two"))
        {
            Content = new StringContent("the body", Encoding.UTF8, "text/x-test"),
        };
        request.Headers.Add("X-Custom-Header", "custom value");
        using var response = await web.Client.SendAsync(request, TestContext.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, text);
        Assert.AreEqual("text/plain", response.Content.Headers.ContentType?.MediaType);
        StringAssert.Contains(text, "method=POST\n");
        StringAssert.Contains(text, "path=/echo\n");
        StringAssert.Contains(text, "query=a=1&b=two\n");
        StringAssert.Contains(text, "HTTP_X_CUSTOM_HEADER=custom value\n");
        StringAssert.Contains(text, "CONTENT_TYPE=text/x-test; charset=utf-8\n");
        StringAssert.Contains(text, "CONTENT_LENGTH=8\n");
        StringAssert.Contains(text, $"SERVER_PORT={web.Port}\n");
        StringAssert.Contains(text, "SERVER_NAME=127.0.0.1\n");
        StringAssert.Contains(text, "SERVER_PROTOCOL=HTTP/1.1\n");
        StringAssert.Contains(text, "GATEWAY_INTERFACE=CGI/1.1\n");
        StringAssert.Contains(text, "REMOTE_ADDR=127.0.0.1\n");
        Assert.IsTrue(text.EndsWith("body=the body", StringComparison.Ordinal), text);

        using var envResponse = await web.Client.GetAsync(web.Url("/env?GREETING"), TestContext.CancellationToken);
        using var fileResponse = await web.Client.GetAsync(web.Url("/file?/config/message"), TestContext.CancellationToken);
        Assert.AreEqual("from a volume\n", await fileResponse.Content.ReadAsStringAsync(TestContext.CancellationToken), "the pod's volumes reach every request");
        Assert.AreEqual("hi\n", await envResponse.Content.ReadAsStringAsync(TestContext.CancellationToken), "the pod's env reaches every request");

        var access = web.Log("stdout");
        Assert.IsTrue(access.Any(l => l.Contains("\"POST /echo?a=1&b=two HTTP/1.1\" 200", StringComparison.Ordinal)), string.Join('\n', access));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Status_and_Location_set_the_status_and_redirect()
    {
        await using var web = await Serve();
        using var teapot = await web.Client.GetAsync(web.Url("/status?418"), TestContext.CancellationToken);
        Assert.AreEqual((HttpStatusCode)418, teapot.StatusCode);
        Assert.AreEqual("Custom Reason", teapot.ReasonPhrase);
        Assert.AreEqual("status 418\n", await teapot.Content.ReadAsStringAsync(TestContext.CancellationToken));

        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        using var redirect = await noRedirects.GetAsync(web.Url("/redirect?/status?201"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Found, redirect.StatusCode);
        Assert.AreEqual("/status?201", redirect.Headers.Location?.OriginalString);

        using var followed = await web.Client.GetAsync(web.Url("/redirect?/status?201"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Created, followed.StatusCode);

        using var head = await web.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, web.Url("/status?200")), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, head.StatusCode);
        Assert.AreEqual(0, (await head.Content.ReadAsByteArrayAsync(TestContext.CancellationToken)).Length);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Each_request_is_counted_and_timed_per_pod_and_status()
    {
        var counted = new System.Collections.Concurrent.ConcurrentBag<(long Value, string Pod, int Code)>();
        var timed = new System.Collections.Concurrent.ConcurrentBag<(double Seconds, int Code)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == HttpHandlerMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        static T Tag<T>(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name) => (T)tags.ToArray().Single(t => t.Key == name).Value!;
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "krustlet.http.requests")
            {
                counted.Add((value, Tag<string>(tags, "pod"), Tag<int>(tags, "code")));
            }
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "krustlet.http.request.duration")
            {
                timed.Add((value, Tag<int>(tags, "code")));
            }
        });
        listener.Start();

        await using var web = await Serve();
        using (await web.Client.GetAsync(web.Url("/count"), TestContext.CancellationToken))
        using (await web.Client.GetAsync(web.Url("/status?404"), TestContext.CancellationToken))
        {
        }

        // The response is complete before the measurement is recorded: stop the handler, so both are in.
        await web.DisposeAsync();
        CollectionAssert.AreEquivalent(new[] { (1L, "web-pod", 200), (1L, "web-pod", 404) }, counted.ToArray());
        Assert.AreEqual(2, timed.Count);
        Assert.IsTrue(timed.All(t => t.Seconds > 0));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task No_instance_state_survives_between_requests()
    {
        await using var web = await Serve();
        for (var i = 0; i < 5; i++)
        {
            using var response = await web.Client.GetAsync(web.Url("/count"), TestContext.CancellationToken);
            var text = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);
            Assert.AreEqual("1\n", text, $"status {(int)response.StatusCode}: {text}");
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Ten_megabytes_stream_in_and_out()
    {
        await using var web = await Serve();
        const int size = 10 * 1000 * 1000;
        var body = new byte[size];
        Random.Shared.NextBytes(body);
        using var echo = await web.Client.PostAsync(web.Url("/echo"), new ByteArrayContent(body), TestContext.CancellationToken);
        var echoed = await echo.Content.ReadAsByteArrayAsync(TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, echo.StatusCode, Encoding.UTF8.GetString(echoed.AsSpan(0, Math.Min(3000, echoed.Length))));
        var marker = Encoding.ASCII.GetBytes("body=");
        var at = echoed.AsSpan().IndexOf(marker);
        Assert.IsTrue(echoed.AsSpan(at + marker.Length).SequenceEqual(body), "the 10 MB body came back whole");

        using var big = await web.Client.GetAsync(web.Url($"/big?{size}"), HttpCompletionOption.ResponseHeadersRead, TestContext.CancellationToken);
        Assert.IsTrue(big.Headers.TransferEncodingChunked, "a response written over more than one poll is streamed (chunked)");
        await using var stream = await big.Content.ReadAsStreamAsync(TestContext.CancellationToken);
        var buffer = new byte[65536];
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, TestContext.CancellationToken)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)('a' + ((total + i) % 65536 % 26)))
                {
                    Assert.Fail($"byte {total + i} is wrong");
                }
            }

            total += read;
        }

        Assert.AreEqual(size, total);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Failures_are_answered_500_502_413_and_logged()
    {
        await using var web = await Serve(new HttpHandlerOptions { MaxRequestBodyBytes = 1000 });
        using var trap = await web.Client.GetAsync(web.Url("/trap"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.InternalServerError, trap.StatusCode);
        StringAssert.Contains(await trap.Content.ReadAsStringAsync(TestContext.CancellationToken), "wasm trap: unreachable");

        using var exit = await web.Client.GetAsync(web.Url("/exit?3"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.InternalServerError, exit.StatusCode);
        StringAssert.Contains(await exit.Content.ReadAsStringAsync(TestContext.CancellationToken), "exited with code 3");

        using var noHeaders = await web.Client.GetAsync(web.Url("/noheaders"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.BadGateway, noHeaders.StatusCode);

        using var tooLarge = await web.Client.PostAsync(web.Url("/echo"), new ByteArrayContent(new byte[1001]), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        StringAssert.Contains(await tooLarge.Content.ReadAsStringAsync(TestContext.CancellationToken), "limit of 1000 bytes");

        using var stderr = await web.Client.GetAsync(web.Url("/stderr"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, stderr.StatusCode);

        var errors = web.Log("stderr");
        CollectionAssert.Contains(errors, "a line on stderr for 127.0.0.1");
        var access = web.Log("stdout");
        Assert.IsTrue(access.Any(l => l.Contains("\"GET /trap HTTP/1.1\" 500", StringComparison.Ordinal) && l.Contains("wasm trap", StringComparison.Ordinal)), string.Join('\n', access));
        Assert.IsTrue(access.Any(l => l.Contains("\"POST /echo HTTP/1.1\" 413", StringComparison.Ordinal)), string.Join('\n', access));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_request_past_its_deadline_is_answered_504_and_its_instance_interrupted()
    {
        await using var web = await Serve(timeout: TimeSpan.FromMilliseconds(300));
        using var slow = await web.Client.GetAsync(web.Url("/sleep?600000"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.GatewayTimeout, slow.StatusCode);
        StringAssert.Contains(await slow.Content.ReadAsStringAsync(TestContext.CancellationToken), "deadline of 0.3 s");
        Assert.AreEqual(0, web.Pool.LiveGuests + _host.Native.Scheduler.Guests, "the sleeping instance was ended, not left parked");
        using var fast = await web.Client.GetAsync(web.Url("/sleep?1"), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, fast.StatusCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Over_the_concurrency_and_queue_limits_requests_get_503_with_Retry_After()
    {
        await using var web = await Serve(new HttpHandlerOptions { MaxConcurrentRequests = 1, RequestQueue = 1 }, timeout: TimeSpan.FromSeconds(20));
        // One runs (a sleep), so of the next two one waits in the queue of one and the other is refused.
        var running = web.Client.GetAsync(web.Url("/sleep?5000"), TestContext.CancellationToken);
        await WaitUntil(() => _host.Native.Scheduler.ParkedGuests >= 1);
        var answers = await Task.WhenAll(
            web.Client.GetAsync(web.Url("/count"), TestContext.CancellationToken),
            web.Client.GetAsync(web.Url("/count"), TestContext.CancellationToken));
        var refused = answers.Single(a => a.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.AreEqual(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(TestContext.CancellationToken), "1 requests and 1 more are waiting");
        Assert.AreEqual(HttpStatusCode.OK, answers.Single(a => a != refused).StatusCode, "the queued one ran once the first was done");
        Assert.AreEqual(HttpStatusCode.OK, (await running).StatusCode);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_stopped_handler_drains_in_flight_requests_then_refuses_connections()
    {
        var web = await Serve(grace: TimeSpan.FromSeconds(20));
        var inFlight = web.Client.GetAsync(web.Url("/sleep?3000"), TestContext.CancellationToken); // long enough to be seen parked
        await WaitUntil(() => _host.Native.Scheduler.ParkedGuests >= 1);
        web.Control.Kill(KillCause.Stopped("the pod is being deleted"));
        var exit = await web.Run;
        using var drained = await inFlight;
        Assert.AreEqual(HttpStatusCode.OK, drained.StatusCode, "the request in flight finished");
        Assert.AreEqual(ExitKind.Exited, exit.Kind);
        Assert.AreEqual(KubeletReasons.Completed, exit.Reason);

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsExactlyAsync<SocketException>(async () => await socket.ConnectAsync(IPAddress.Loopback, web.Port, TestContext.CancellationToken));
        Assert.AreEqual(SocketError.ConnectionRefused, refused.SocketErrorCode);
        web.Client.Dispose();
        web.Pool.Dispose();
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_port_in_use_fails_the_start_with_the_reason()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        using var pool = new ExecutorPool(_host, 2);
        var launch = new ContainerLaunch("web", _handler, ["h"], [], [], null, Path.Combine(_root, "logs", "busy.log"), LogRotationOptions.Default)
        {
            Http = new HttpHandlerLaunch(port, null, null, TimeSpan.FromSeconds(1), "default", "busy"),
        };
        var exit = await pool.RunAsync(launch, new ContainerControl(TimeProvider.System), TestContext.CancellationToken);
        Assert.AreEqual(ExitKind.FailedToStart, exit.Kind);
        Assert.AreEqual(KubeletReasons.StartError, exit.Reason);
        StringAssert.Contains(exit.Message, $"cannot listen on port {port}");
    }

    private async Task WaitUntil(Func<bool> condition)
    {
        // Polls a counter the executor keeps (no wall-clock bound: the test's timeout is the bound).
        while (!condition())
        {
            await Task.Yield();
            await Task.Delay(1, TestContext.CancellationToken);
        }
    }
}
