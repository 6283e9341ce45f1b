using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Krustlet.Stages.Tests.Support;

/// <summary>A request a <see cref="ProbeEndpoint"/> received: its path, headers and the test clock's time then.</summary>
internal sealed record SeenRequest(string Path, IReadOnlyDictionary<string, string> Headers, DateTimeOffset At);

/// <summary>What a <see cref="ProbeEndpoint"/> answers to one request.</summary>
/// <param name="Status">The status code.</param>
/// <param name="Location">A Location header, for redirects.</param>
/// <param name="Body">The body.</param>
/// <param name="Hang">Never answer (until the client gives up).</param>
internal sealed record ProbeAnswer(int Status, string? Location = null, string Body = "", bool Hang = false)
{
    public static implicit operator ProbeAnswer(int status) => new(status);
}

/// <summary>
/// A real HTTP server on 127.0.0.1 for probe tests (Kestrel, HTTP or HTTPS with a self-signed
/// certificate): each request takes the next queued answer for its path (else <see cref="Default"/>),
/// is recorded with the clock's time, and can be awaited one by one.
/// </summary>
internal sealed class ProbeEndpoint : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<ProbeAnswer>> _answers = new(StringComparer.Ordinal);
    private readonly Channel<SeenRequest> _seen = Channel.CreateUnbounded<SeenRequest>();
    private readonly ConcurrentQueue<SeenRequest> _all = new();

    private ProbeEndpoint(WebApplication app, TimeProvider time)
    {
        _app = app;
        _time = time;
    }

    public int Port { get; private set; }

    /// <summary>The answer when none is queued for the path.</summary>
    public ProbeAnswer Default { get; set; } = new(200, Body: "ok");

    /// <summary>Every request so far.</summary>
    public IReadOnlyList<SeenRequest> All => [.. _all];

    public static async Task<ProbeEndpoint> StartAsync(TimeProvider time, CancellationToken cancellationToken, bool https = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (https)
            {
                listen.UseHttps(SelfSigned());
            }
        }));
        var app = builder.Build();
        var endpoint = new ProbeEndpoint(app, time);
        app.Run(endpoint.HandleAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
        endpoint.Port = new Uri(address).Port;
        return endpoint;
    }

    /// <summary>Queues answers for the next requests to <paramref name="path"/>, in order.</summary>
    public void Answer(string path, params ProbeAnswer[] answers)
    {
        var queue = _answers.GetOrAdd(path, _ => new ConcurrentQueue<ProbeAnswer>());
        foreach (var answer in answers)
        {
            queue.Enqueue(answer);
        }
    }

    /// <summary>The next request received (in arrival order; each is returned once).</summary>
    public async Task<SeenRequest> NextAsync(CancellationToken cancellationToken) => await _seen.Reader.ReadAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var answer = _answers.TryGetValue(path, out var queue) && queue.TryDequeue(out var queued) ? queued : Default;
        var seen = new SeenRequest(path + context.Request.QueryString, context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), _time.GetUtcNow());
        _all.Enqueue(seen);
        _seen.Writer.TryWrite(seen);
        if (answer.Hang)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        context.Response.StatusCode = answer.Status;
        if (answer.Location is { } location)
        {
            context.Response.Headers.Location = location.Replace("{port}", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        }

        await context.Response.WriteAsync(answer.Body, context.RequestAborted);
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=probe-test", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }
}
