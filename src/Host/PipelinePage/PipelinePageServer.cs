using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Host.PipelinePage;

/// <summary>The pipeline page on plain HTTP on 127.0.0.1 only: a viewer on this machine, no credentials.</summary>
public sealed class PipelinePageServer : IAsyncDisposable
{
    /// <summary>The default port (<c>Page:Port</c>), next to the kubelet's 10250.</summary>
    public const int DefaultPort = 10265;

    private readonly PipelinePageSource _source;
    private readonly int _port;
    private readonly ILoggerFactory _loggerFactory;
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;

    public PipelinePageServer(PipelinePageSource source, int port, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _port = port;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
    }

    /// <summary>Where the page is, once started.</summary>
    public Uri Url { get; private set; } = new("http://127.0.0.1/pipeline");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "krustlet-pipeline-page" });
        builder.Services.AddSingleton(_loggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, _port);
        });
        var app = builder.Build();
        app.UseRouting();
        PipelinePageEndpoints.Map(app, _source, _stopping.Token);
        app.MapGet("/", context =>
        {
            context.Response.Redirect("/pipeline");
            return Task.CompletedTask;
        });
        await app.StartAsync(cancellationToken);
        _app = app;
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        Url = new Uri($"http://127.0.0.1:{address.Port}/pipeline");
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_app is { } app)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        _stopping.Dispose();
    }
}
