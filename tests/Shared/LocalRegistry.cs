using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Krustlet.Tests.Shared;

/// <summary>
/// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with a
/// temporary storage directory and a generated config, optionally behind htpasswd Basic auth.
/// </summary>
internal sealed class LocalRegistry : IAsyncDisposable
{
    public const string User = "puller";
    public const string Password = "s3cret-pass";

    private readonly Process _process;
    private readonly string _root;

    private LocalRegistry(Process process, string root, int port)
    {
        _process = process;
        _root = root;
        Host = $"127.0.0.1:{port}";
    }

    /// <summary>host:port of the registry.</summary>
    public string Host { get; }

    public static async Task<LocalRegistry> StartAsync(bool basicAuth, CancellationToken cancellationToken)
    {
        var root = Directory.CreateTempSubdirectory("krustlet-registry-").FullName;
        var port = FreePort();
        var auth = string.Empty;
        if (basicAuth)
        {
            var htpasswd = Path.Combine(root, "htpasswd");
            File.WriteAllText(htpasswd, Tool.Run("htpasswd", "-Bbn", User, Password));
            auth = $"auth: {{htpasswd: {{realm: krustlet-test, path: {htpasswd}}}}}\n";
        }

        var config = Path.Combine(root, "config.yml");
        File.WriteAllText(config, string.Join('\n',
            "version: 0.1",
            "log: {level: info}",
            $"storage: {{filesystem: {{rootdirectory: {Path.Combine(root, "data")}}}, delete: {{enabled: true}}}}",
            $"http: {{addr: 127.0.0.1:{port}}}",
            auth));
        var start = new ProcessStartInfo("docker-registry") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(config);
        var process = Process.Start(start) ?? throw new InvalidOperationException("docker-registry did not start");
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException($"docker-registry exited: {string.Join('\n', log)}"));
                return;
            }

            log.Enqueue(e.Data);
            if (e.Data.Contains("listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        // The registry logs "listening on" once its socket is bound: a gate, not a sleep.
        await listening.Task.WaitAsync(cancellationToken);
        return new LocalRegistry(process, root, port);
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Counts requests by method and path kind, and can alter blob bodies in flight (a tampering proxy).</summary>
internal sealed class InspectingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private int _manifestGets;
    private int _blobGets;

    public int ManifestGets => Volatile.Read(ref _manifestGets);

    public int BlobGets => Volatile.Read(ref _blobGets);

    /// <summary>When set, every blob body fetched is replaced by what this returns.</summary>
    public Func<byte[], byte[]>? TamperBlobs { get; set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        var isGet = request.Method == HttpMethod.Get;
        if (isGet && path.Contains("/manifests/", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _manifestGets);
        }

        var isBlob = isGet && path.Contains("/blobs/sha256:", StringComparison.Ordinal);
        if (isBlob)
        {
            Interlocked.Increment(ref _blobGets);
        }

        var response = await base.SendAsync(request, cancellationToken);
        if (isBlob && TamperBlobs is { } tamper && response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            response.Content = new ByteArrayContent(tamper(body));
        }

        return response;
    }
}
