using System.Net;
using Krustlet.Host.Agent;
using Krustlet.Stages;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.PipelinePage;

/// <summary>
/// The live pipeline page of a running agent, where its settings put it: on 127.0.0.1
/// (<c>Page:Port</c>, the default) or on the kubelet API's port behind its authentication
/// (<c>Page:OnKubeletPort</c>). <c>node</c> and <c>standalone</c> print the line <see cref="StartAsync"/> returns.
/// </summary>
public sealed class PipelinePageHost : IAsyncDisposable
{
    private readonly PipelineMonitor _monitor;
    private readonly PipelinePageSource _source;
    private readonly bool _onKubeletPort;
    private readonly int _port;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly Stages.Admission.ReservedPorts _reserved;
    private readonly CancellationTokenSource _stopping = new();
    private PipelinePageServer? _server;

    private PipelinePageHost(AgentRuntime runtime, TimeSpan interval, ILoggerFactory? loggerFactory, TimeProvider? time)
    {
        var settings = runtime.Settings;
        _onKubeletPort = settings.PageOnKubeletPort;
        _port = settings.PagePort;
        _loggerFactory = loggerFactory;
        _reserved = runtime.ReservedPorts;
        _monitor = new PipelineMonitor(runtime.Instruments.Meter, [.. StageNames.GraphStages, StageNames.StatusReport], settings.Pipeline, time);
        _source = new PipelinePageSource(_monitor, runtime.Pods, settings.NodeName, settings.LogsDirectory, interval, time);
    }

    /// <summary>The page of <paramref name="runtime"/>, or null when its settings serve none (<c>Page:Port</c> -1, not on the kubelet port).</summary>
    /// <param name="runtime">The agent.</param>
    /// <param name="interval">How often the page's figures are sent (one second in the agent).</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="time">The clock.</param>
    public static PipelinePageHost? Create(AgentRuntime runtime, TimeSpan interval, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        return runtime.Settings.PagePort < 0 && !runtime.Settings.PageOnKubeletPort ? null : new PipelinePageHost(runtime, interval, loggerFactory, time);
    }

    /// <summary>The routes to add to the kubelet API (behind its authentication), when the page lives there.</summary>
    public Action<IEndpointRouteBuilder>? KubeletRoutes => _onKubeletPort ? routes => PipelinePageEndpoints.Map(routes, _source, _stopping.Token) : null;

    /// <summary>Starts the loopback server unless the page is on the kubelet port; returns the line that says where the page is.</summary>
    /// <param name="kubeletApi">Where the kubelet API listens.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task<string> StartAsync(IPEndPoint kubeletApi, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(kubeletApi);
        if (_onKubeletPort)
        {
            var host = kubeletApi.Address.Equals(IPAddress.Any) ? "127.0.0.1" : kubeletApi.Address.ToString();
            return $"pipeline page: https://{host}:{kubeletApi.Port}/pipeline (kubelet API credentials required)";
        }

        var server = new PipelinePageServer(_source, _port, _loggerFactory);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            // The port is taken (another agent on this machine?): the agent runs on without its page.
            await server.DisposeAsync();
            return $"pipeline page not started: 127.0.0.1:{_port}: {ex.Message} (set Page:Port, 0 for a free port)";
        }

        _server = server;
        _reserved.Reserve(server.Url.Port, Configuration.SettingsCatalog.PagePort.Key); // the port bound, when Page:Port is 0
        return $"pipeline page: {server.Url}";
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        await _source.DisposeAsync();
        _monitor.Dispose();
        _stopping.Dispose();
    }
}
