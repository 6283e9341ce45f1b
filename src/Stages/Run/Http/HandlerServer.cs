using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Threading.RateLimiting;
using Krustlet.Stages.Compile;
using Krustlet.Stages.Run.Executor;
using Krustlet.Stages.Wasmtime.Native;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// One run of an HTTP handler container: a Kestrel listener on the container's <c>http</c> port, and for
/// every request a fresh instance of its module on the executor (WAGI-style CGI: the request's
/// meta-variables in the environment, its body on stdin, the response on stdout; see
/// <see cref="CgiEnvironment"/> and <see cref="CgiResponse"/>). The run is Running, and Serving, once
/// the listener is bound; it ends when the container is stopped: the listener closes at once (new
/// connections are refused), requests in flight drain within the pod's grace period, then the rest are
/// interrupted. Limits per request: the body size (413), the deadline (504, instance interrupted), the
/// pod's concurrency and queue (503 with Retry-After). Each request writes one access line to the
/// container's CRI log, and the guest's stderr there too.
/// </summary>
internal sealed partial class HandlerServer : IHttpApplication<HttpContext>, IDisposable
{
    /// <summary>Kept back from the grace period, so the run ends before the pod's stop stops waiting for it.</summary>
    private static readonly TimeSpan DrainMargin = TimeSpan.FromMilliseconds(500);

    private readonly WasmEngineHost _host;
    private readonly ContainerLaunch _launch;
    private readonly HttpHandlerLaunch _http;
    private readonly ContainerControl _control;
    private readonly HttpHandlerOptions _options;
    private readonly HttpHandlerMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly CriLogWriter _log;
    private readonly ILogger _logger;
    private readonly ConcurrencyLimiter _limiter;
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _abort = new();
    private volatile bool _draining;

    private HandlerServer(WasmEngineHost host, ContainerLaunch launch, ContainerControl control, HttpHandlerOptions options, HttpHandlerMetrics metrics, ILogger logger, TimeProvider time, CriLogWriter log)
    {
        _host = host;
        _launch = launch;
        _http = launch.Http!;
        _control = control;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _time = time;
        _log = log;
        _timeout = _http.RequestTimeout ?? options.RequestTimeout;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = _http.MaxConcurrentRequests ?? options.MaxConcurrentRequests,
            QueueLimit = options.RequestQueue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
    }

    /// <summary>Serves the container's requests until it is stopped; returns how the run ended.</summary>
    public static async Task<ContainerExit> ServeAsync(WasmEngineHost host, ContainerLaunch launch, ContainerControl control, HttpHandlerOptions options, HttpHandlerMetrics metrics, ILoggerFactory loggerFactory, TimeProvider time)
    {
        var startedAt = time.GetUtcNow();
        var http = launch.Http ?? throw new ArgumentException("The launch is not an HTTP handler's.", nameof(launch));
        ContainerExit NotStarted(string message) => new(ExitKind.FailedToStart, 128, KubeletReasons.StartError, message, startedAt, time.GetUtcNow());
        if (http.Problem is { } problem)
        {
            return NotStarted(problem);
        }

        if (launch.Artifact.Kind != WasmBinaryKind.CoreModule)
        {
            return NotStarted("an HTTP handler (a port named http) must be a WASI preview 1 core module run WAGI-style, one instance per request; this image is a WASI 0.2 component");
        }

        if (launch.Artifact.InstancePre is null)
        {
            return NotStarted(launch.Artifact.PrepareError ?? "the module cannot be instantiated");
        }

        using var log = new CriLogWriter(launch.LogPath, launch.LogRotation, time);
        var logger = loggerFactory.CreateLogger<HandlerServer>();
        var handler = new HandlerServer(host, launch, control, options, metrics, logger, time, log);
        try
        {
            return await handler.RunAsync(loggerFactory, startedAt).ConfigureAwait(false);
        }
        finally
        {
            handler.Dispose();
        }
    }

    private async Task<ContainerExit> RunAsync(ILoggerFactory loggerFactory, DateTimeOffset startedAt)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _control.OnStop(() => stopped.TrySetResult());
        using var deadline = _control.Deadline is { } at
            ? _time.CreateTimer(_ => _control.Kill(KillCause.DeadlineExceeded), null, Max(at - _time.GetUtcNow(), TimeSpan.Zero), Timeout.InfiniteTimeSpan)
            : null;
        var kestrel = new KestrelServerOptions { AddServerHeader = false, ApplicationServices = new ServiceCollection().BuildServiceProvider() };
        kestrel.Limits.MaxRequestBodySize = null; // the handler answers 413 itself, with its limit in the answer
        foreach (var address in _options.Addresses)
        {
            kestrel.Listen(address, _http.Port);
        }

        var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggerFactory);
        using var server = new KestrelServer(Options.Create(kestrel), transport, loggerFactory);
        try
        {
            await server.StartAsync(this, CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            _control.OnStop(null);
            var message = $"cannot listen on port {_http.Port.ToString(CultureInfo.InvariantCulture)} ({string.Join(", ", _options.Addresses)}): {WasmContainerRunner.FirstLine(ex.Message)}";
            Log.ListenFailed(_logger, _http.Namespace, _http.Pod, _launch.Name, message);
            return new ContainerExit(ExitKind.FailedToStart, 128, KubeletReasons.StartError, message, startedAt, _time.GetUtcNow());
        }

        _control.MarkServing();
        Log.Serving(_logger, _http.Namespace, _http.Pod, _launch.Name, _http.Port);
        await stopped.Task.ConfigureAwait(false);
        _control.OnStop(null);
        var cause = _control.Cause!;

        // Stop: the listener closes (Kestrel unbinds first), idle connections close, requests in flight
        // finish within the grace period; then Kestrel aborts their connections and their instances end.
        _draining = true;
        var budget = Max(_http.GracePeriod - DrainMargin, TimeSpan.Zero);
        using var drain = new CancellationTokenSource(budget, _time);
        using var abortOnDrainEnd = drain.Token.Register(() => _abort.Cancel());
        try
        {
            await server.StopAsync(drain.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The grace period ended first: what was still running was aborted.
        }

        var drained = !drain.IsCancellationRequested;
        Log.Stopped(_logger, _http.Namespace, _http.Pod, _launch.Name, drained);
        var finishedAt = _time.GetUtcNow();
        if (drained && cause.Kind is KillKind.Stopped or KillKind.DefinitionChanged)
        {
            // A server that drains and exits on SIGTERM ends its container with 0.
            return new ContainerExit(ExitKind.Exited, 0, KubeletReasons.Completed, null, startedAt, finishedAt);
        }

        var why = drained ? cause.Message : $"{cause.Message}; requests still running after the grace period of {_http.GracePeriod.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s were interrupted";
        return new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, $"killed: {why}", startedAt, finishedAt);
    }

    public void Dispose()
    {
        _limiter.Dispose();
        _abort.Dispose();
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

    public void DisposeContext(HttpContext context, Exception? exception)
    {
    }

    public async Task ProcessRequestAsync(HttpContext context)
    {
        var arrived = Stopwatch.GetTimestamp();
        _metrics.InFlight(_http, _launch.Name, 1);
        string? failure = null;
        var status = 0;
        long bytes = 0;
        try
        {
            (status, bytes, failure) = await AnswerAsync(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            // The client went away or sent a malformed body: there is no one to answer.
            status = ex is Microsoft.AspNetCore.Http.BadHttpRequestException bad ? bad.StatusCode : 499;
            failure = $"the request ended early: {WasmContainerRunner.FirstLine(ex.Message)}";
            context.Abort();
        }
#pragma warning disable CA1031 // One request's failure is its own: it is answered 500 and logged, the handler serves on.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            status = StatusCodes.Status500InternalServerError;
            failure = $"the agent failed to run the request: {ex.GetType().Name}: {WasmContainerRunner.FirstLine(ex.Message)}";
            Log.RequestCrashed(_logger, _http.Namespace, _http.Pod, _launch.Name, ex);
            if (!context.Response.HasStarted)
            {
                await CgiResponse.ErrorAsync(context, status, failure).ConfigureAwait(false);
            }
            else
            {
                context.Abort();
            }
        }
        finally
        {
            _metrics.InFlight(_http, _launch.Name, -1);
        }

        var elapsed = Stopwatch.GetElapsedTime(arrived);
        _metrics.Record(_http, _launch.Name, status, elapsed);
        AccessLine(context, status, bytes, elapsed, failure);
        if (failure is not null)
        {
            Log.RequestFailed(_logger, _http.Namespace, _http.Pod, _launch.Name, context.Request.Method, context.Request.Path.Value ?? "/", status, failure);
        }
    }

    private async Task<(int Status, long Bytes, string? Failure)> AnswerAsync(HttpContext context)
    {
        if (_draining)
        {
            context.Response.Headers.Connection = "close";
            return await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "the pod is stopping").ConfigureAwait(false);
        }

        var max = _options.MaxRequestBodyBytes;
        if (context.Request.ContentLength > max)
        {
            context.Response.Headers.Connection = "close";
            return await RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, TooLarge(max)).ConfigureAwait(false);
        }

        using var lease = _limiter.AttemptAcquire();
        using var queued = lease.IsAcquired ? null : await _limiter.AcquireAsync(1, context.RequestAborted).ConfigureAwait(false);
        if (!lease.IsAcquired && queued?.IsAcquired != true)
        {
            return await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, $"the pod is running {_http.MaxConcurrentRequests ?? _options.MaxConcurrentRequests} requests and {_options.RequestQueue} more are waiting", retryAfterSeconds: 1).ConfigureAwait(false);
        }

        var body = await ReadBodyAsync(context, max).ConfigureAwait(false);
        if (body is null)
        {
            context.Response.Headers.Connection = "close";
            return await RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, TooLarge(max)).ConfigureAwait(false);
        }

        var control = new ContainerControl(_time, _time.GetUtcNow() + _timeout, _control.Usage);
        using var clientGone = context.RequestAborted.Register(static c => ((ContainerControl)c!).Kill(KillCause.Stopped("the client went away")), control);
        using var podGone = _abort.Token.Register(static c => ((ContainerControl)c!).Kill(KillCause.Stopped("the pod stopped before the request finished")), control);
        var response = new CgiResponse(context, _log);
        var launch = _launch with { Env = CgiEnvironment.For(context, _launch.Env, body.Value.Length, _http.Port) };
        var (exit, dropped) = await RunGuestAsync(launch, control, response, body.Value).ConfigureAwait(false);
        var failure = await response.CompleteAsync(exit, control.Cause, dropped, _timeout).ConfigureAwait(false);
        return (response.StatusCode, response.BodyBytes, failure);
    }

    // One instance for the request, on the executor, to its end.
    private async Task<(ContainerExit Exit, ulong DroppedBytes)> RunGuestAsync(ContainerLaunch launch, ContainerControl control, CgiResponse response, ReadOnlyMemory<byte> body)
    {
        ModuleGuest guest;
        try
        {
            guest = new ModuleGuest(_host, launch, control, _time, _log, response, body);
        }
        catch (WasmtimeNativeException ex)
        {
            return (WasmContainerRunner.Outcome(ex, launch, _host, _time.GetUtcNow(), _time), 0);
        }

        Task completion;
        try
        {
            (_, completion) = _host.Native.Scheduler.Start(guest);
        }
        catch
        {
            guest.Dispose();
            throw;
        }

        try
        {
            await Task.WhenAny(response.Streaming, completion).ConfigureAwait(false);
            if (response.Streaming.IsCompleted)
            {
                // Even when the guest has ended meanwhile: what it streamed is in the channel, not buffered.
                await response.StreamAsync(completion).ConfigureAwait(false);
            }

            await completion.ConfigureAwait(false);
            return (await guest.Exit.ConfigureAwait(false), guest.DroppedOutput);
        }
        catch (OperationCanceledException) when (!guest.Exit.IsCompletedSuccessfully)
        {
            var now = _time.GetUtcNow();
            return (new ContainerExit(ExitKind.Killed, ContainerExit.KilledExitCode, KubeletReasons.Error, "killed: the executor stopped", now, now), 0);
        }
    }

    private static string TooLarge(long max) => $"the request body is over the handler's limit of {max.ToString(CultureInfo.InvariantCulture)} bytes (Http:MaxRequestBody)";

    private static async Task<(int, long, string?)> RefuseAsync(HttpContext context, int status, string message, int? retryAfterSeconds = null)
    {
        await CgiResponse.ErrorAsync(context, status, message, retryAfterSeconds).ConfigureAwait(false);
        return (status, 0, message);
    }

    // The whole body, which becomes the guest's stdin; null when it is over the limit.
    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpContext context, long max)
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false || context.Request.ContentLength == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        var reader = context.Request.BodyReader;
        var buffer = new ArrayBufferWriter<byte>(context.Request.ContentLength is { } length ? (int)Math.Max(1, length) : 16 * 1024);
        while (true)
        {
            var read = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            if (buffer.WrittenCount + read.Buffer.Length > max)
            {
                reader.AdvanceTo(read.Buffer.End);
                return null;
            }

            foreach (var segment in read.Buffer)
            {
                buffer.Write(segment.Span);
            }

            reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return buffer.WrittenMemory;
            }
        }
    }

    // One line per request in the container's log, in the common log format with the time taken and,
    // for a failure, why.
    private void AccessLine(HttpContext context, int status, long bytes, TimeSpan elapsed, string? failure)
    {
        var request = context.Request;
        var remote = context.Connection.RemoteIpAddress;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{(remote is { IsIPv4MappedToIPv6: true } ? remote.MapToIPv4() : remote)} - - [{_time.GetUtcNow():dd/MMM/yyyy:HH:mm:ss} +0000] \"{request.Method} {request.Path}{request.QueryString} {request.Protocol}\" {status} {bytes} {elapsed.TotalMilliseconds:0.###}ms{(failure is null ? string.Empty : $" \"{failure}\"")}\n");
        _log.Write(LogStream.Stdout, System.Text.Encoding.UTF8.GetBytes(line));
    }

    private static partial class Log
    {
        [LoggerMessage(2200, LogLevel.Information, "HTTP handler {Namespace}/{Pod} container {Container} serves on port {Port}")]
        public static partial void Serving(ILogger logger, string @namespace, string pod, string container, int port);

        [LoggerMessage(2201, LogLevel.Warning, "HTTP handler {Namespace}/{Pod} container {Container} cannot start: {Message}")]
        public static partial void ListenFailed(ILogger logger, string @namespace, string pod, string container, string message);

        [LoggerMessage(2202, LogLevel.Warning, "HTTP handler {Namespace}/{Pod} container {Container}: {Method} {Path} answered {Status}: {Reason}")]
        public static partial void RequestFailed(ILogger logger, string @namespace, string pod, string container, string method, string path, int status, string reason);

        [LoggerMessage(2204, LogLevel.Error, "HTTP handler {Namespace}/{Pod} container {Container}: a request failed in the agent")]
        public static partial void RequestCrashed(ILogger logger, string @namespace, string pod, string container, Exception exception);

        [LoggerMessage(2203, LogLevel.Information, "HTTP handler {Namespace}/{Pod} container {Container} stopped serving (drained: {Drained})")]
        public static partial void Stopped(ILogger logger, string @namespace, string pod, string container, bool drained);
    }
}
