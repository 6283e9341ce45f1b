using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using k8s;
using k8s.Models;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Stages.Run;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Metrics;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// The kubelet HTTP API on Kestrel, always over TLS: <c>/healthz</c> (open), and for authenticated and
/// authorized callers <c>/metrics</c> (every <c>Krustlet*</c> meter, Prometheus text), <c>/metrics/resource</c>
/// and <c>/stats/summary</c> (the kubelet's resource metrics and Summary API), <c>/pods</c> and
/// <c>/containerLogs/{namespace}/{pod}/{container}</c>. The certificate it presents can be replaced while
/// it runs (<see cref="UseCertificate"/>): new handshakes get the new one, open connections carry on.
/// </summary>
public sealed partial class KubeletServer : IAsyncDisposable
{
    /// <summary>The longest request URI answered (Kestrel's HTTP/1.1 request-line limit, 8 KiB); longer is 414.</summary>
    public const int MaxUriBytes = 8 * 1024;

    /// <summary>How large HTTP/2 request headers may be before Kestrel resets the stream (so a long path still gets its 414).</summary>
    private const int MaxHeaderBytes = 256 * 1024;

    /// <summary>Meters whose names match this are exported on <c>/metrics</c>.</summary>
    public const string MeterPattern = "Krustlet*";

    private readonly KubeletServerOptions _options;
    private readonly IKubeletPods _pods;
    private readonly string _logRoot;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly IKubeletReviews? _reviews;
    private readonly IPodUsageSource? _usage;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _certificateLock = new();
    private readonly Action<IEndpointRouteBuilder>? _routes;
    private WebApplication? _app;
    private volatile X509Certificate2? _certificate;
    private X509Certificate2? _retired;

    /// <param name="options">Address, port, TLS and credentials; validated by <see cref="StartAsync"/>.</param>
    /// <param name="pods">The node's pods with their status.</param>
    /// <param name="logRoot">Where the run stage writes container logs (<c>RunOptions.LogRoot</c>).</param>
    /// <param name="time">The clock for <c>sinceSeconds</c>, the follow poll and certificate validity.</param>
    /// <param name="loggerFactory">Where the server and Kestrel log.</param>
    /// <param name="reviews">The API server's TokenReview and SubjectAccessReview; needed by the token webhook and the Webhook authorization mode.</param>
    /// <param name="usage">The running containers' CPU and memory for <c>/stats/summary</c> and <c>/metrics/resource</c>; without, they show the node alone.</param>
    /// <param name="routes">More routes, served behind the same authentication (the pipeline page).</param>
    public KubeletServer(KubeletServerOptions options, IKubeletPods pods, string logRoot, TimeProvider? time = null, ILoggerFactory? loggerFactory = null, IKubeletReviews? reviews = null, IPodUsageSource? usage = null, Action<IEndpointRouteBuilder>? routes = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pods);
        ArgumentException.ThrowIfNullOrEmpty(logRoot);
        _options = options;
        _pods = pods;
        _logRoot = logRoot;
        _time = time ?? TimeProvider.System;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<KubeletServer>();
        _reviews = reviews;
        _routes = routes;
        _usage = usage;
    }

    /// <summary>Where the server listens, with the real port when <see cref="KubeletServerOptions.Port"/> was 0. Set by <see cref="StartAsync"/>.</summary>
    public IPEndPoint Endpoint { get; private set; } = new(IPAddress.None, 0);

    /// <summary>The certificate the server presents to new connections (configured, generated, or given to <see cref="UseCertificate"/>). Set by <see cref="StartAsync"/>.</summary>
    public X509Certificate2 Certificate => _certificate ?? throw new InvalidOperationException("The kubelet API has not been started.");

    /// <summary>Validates the options, loads or generates the certificate, and starts listening.</summary>
    /// <exception cref="InvalidOperationException">The options are invalid (every problem is listed), or a file cannot be used.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("The kubelet API is already started.");
        }

        var errors = new List<string>(_options.Validate());
        if (_reviews is null && _options.AuthorizationMode == KubeletAuthorizationMode.Webhook)
        {
            errors.Add("AuthorizationMode: Webhook asks the API server (SubjectAccessReview), but there is none: use AlwaysAllow.");
        }

        if (_reviews is null && _options.AuthenticationTokenWebhook)
        {
            errors.Add("AuthenticationTokenWebhook: tokens are reviewed by the API server (TokenReview), but there is none.");
        }

        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid kubelet API settings:" + string.Concat(errors.Select(e => Environment.NewLine + "  - " + e)));
        }

        var authenticator = KubeletAuthenticator.Create(_options, _options.AuthenticationTokenWebhook ? _reviews : null, _time, _logger);
        if (!authenticator.AcceptsAnyone)
        {
            LogNoCredentials(_logger);
        }

        var authorizer = _options.AuthorizationMode == KubeletAuthorizationMode.Webhook
            ? KubeletAuthorizer.Webhook(_reviews!, _options.AuthorizedCacheTtl, _options.UnauthorizedCacheTtl, _time, _logger)
            : KubeletAuthorizer.AlwaysAllow(_logger);
        _certificate = ServingCertificate.Load(_options, _time);
        var app = Build(authenticator, authorizer);
        await app.StartAsync(cancellationToken);
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Endpoint = new IPEndPoint(IPAddress.Parse(_options.Address), new Uri(address).Port);
        LogStarted(_logger, Endpoint.ToString(), _certificate.Subject, _certificate.NotAfter, _options.AuthorizationMode.ToString());
    }

    /// <summary>
    /// Presents <paramref name="certificate"/> (with its private key) from the next TLS handshake on;
    /// connections already open keep theirs. The server owns the certificate from now on.
    /// </summary>
    public void UseCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException("The serving certificate needs its private key.", nameof(certificate));
        }

        lock (_certificateLock)
        {
            // The one before the current may still be in a handshake begun a moment ago; the older one is done with.
            _retired?.Dispose();
            _retired = _certificate;
            _certificate = certificate;
        }

        LogCertificateReplaced(_logger, certificate.Subject, certificate.NotAfter);
    }

    /// <summary>Ends followed logs and stops listening, waiting for requests in progress until <paramref name="cancellationToken"/>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        await _stopping.CancelAsync();
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_app is { } app)
        {
            await app.DisposeAsync(); // disposes the MeterProvider with the rest of the server's services
        }

        _certificate?.Dispose();
        _retired?.Dispose();
        _stopping.Dispose();
    }

    /// <summary>
    /// Writes a whole text answer with its Content-Length, so an HTTP/1.0 client (ab) can keep the
    /// connection alive and knows where the answer ends without waiting for the connection to close.
    /// </summary>
    internal static Task WriteTextAsync(HttpContext context, int status, string text, CancellationToken cancellationToken) =>
        WriteWholeAsync(context, status, "text/plain; charset=utf-8", text + "\n", cancellationToken);

    /// <summary>Writes a whole answer with its Content-Length (see <see cref="WriteTextAsync"/>).</summary>
    internal static Task WriteWholeAsync(HttpContext context, int status, string contentType, string content, CancellationToken cancellationToken)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(content);
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, cancellationToken).AsTask();
    }

    /// <summary>
    /// Writes a Kubernetes <c>Status</c> (Failure) with this code, reason and message, as the API server
    /// answers errors; <paramref name="cause"/>, when given, goes in <c>details.causes</c>.
    /// </summary>
    internal static Task WriteStatusAsync(HttpContext context, int code, string reason, string message, CancellationToken cancellationToken, string? cause = null)
    {
        // KubernetesClient's V1Status converter reads but does not write, so the Status is built as JSON here.
        var status = new System.Text.Json.Nodes.JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new System.Text.Json.Nodes.JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        };
        if (!string.IsNullOrEmpty(cause))
        {
            status["details"] = new System.Text.Json.Nodes.JsonObject { ["causes"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["message"] = cause }) };
        }

        return WriteWholeAsync(context, code, "application/json", status.ToJsonString(), cancellationToken);
    }

    private static readonly SslApplicationProtocol Http10 = new("http/1.0");

    private WebApplication Build(KubeletAuthenticator authenticator, KubeletAuthorizer authorizer)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "krustlet-kubelet-api" });
        builder.Services.AddSingleton(_loggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddRoutingCore();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(MeterPattern)
            .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // An over-long URL is answered 414 on every protocol by the first middleware. Kestrel's own
            // limits answer 414 only over HTTP/1.x; over HTTP/2, where the path is a header, they reset
            // the stream with no answer (curl saw none). So they are raised well above MaxUriBytes.
            kestrel.Limits.MaxRequestLineSize = MaxHeaderBytes;
            kestrel.Limits.Http2.MaxRequestHeaderFieldSize = MaxHeaderBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = MaxHeaderBytes;
            kestrel.Listen(IPAddress.Parse(_options.Address), _options.Port, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificateSelector = (_, _) => _certificate,
                // A certificate is asked for but not required (bearer tokens work too); it is checked per request.
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (_, _, _) => true,

                // A client that asks for HTTP/1.0 by ALPN (curl --http1.0) is answered in HTTP/1.0 rather
                // than refused in the handshake ("no application protocol").
                OnAuthenticate = (_, ssl) => ssl.ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11, Http10],
            }));
        });

        var app = builder.Build();
        var logs = new ContainerLogsEndpoint(_pods, _logRoot, _time, _options.LogFollowPollInterval);
        app.Use(async (context, next) =>
        {
            if ((context.Request.Path.Value?.Length ?? 0) + context.Request.QueryString.Value?.Length > MaxUriBytes)
            {
                await WriteStatusAsync(context, StatusCodes.Status414UriTooLong, "RequestURITooLong", $"the request URI is longer than {MaxUriBytes} bytes", context.RequestAborted);
                return;
            }

            await next(context);
        });
        app.Use(async (context, next) =>
        {
            if (context.Request.Path != "/healthz")
            {
                var authentication = await authenticator.AuthenticateAsync(context, context.RequestAborted);
                if (authentication.User is not { } user)
                {
                    LogRefused(_logger, context.Request.Path, context.Connection.RemoteIpAddress?.ToString() ?? "?", authentication.Problem);
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    await WriteTextAsync(context, StatusCodes.Status401Unauthorized, $"Unauthorized: {authentication.Problem}", context.RequestAborted);
                    return;
                }

                var attributes = KubeletRequestAttributes.Of(context.Request.Method, context.Request.Path.Value ?? "/", _options.NodeName);
                var decision = await authorizer.AuthorizeAsync(user, attributes, context.RequestAborted);
                if (decision.Outcome != AuthorizationOutcome.Allowed)
                {
                    var forbidden = decision.Outcome == AuthorizationOutcome.Denied;
                    var message = forbidden ? attributes.Forbidden(user) : attributes.AuthorizationError(user);
                    LogNotAuthorized(_logger, context.Request.Method, context.Request.Path, message, decision.Reason);
                    await WriteStatusAsync(
                        context,
                        forbidden ? StatusCodes.Status403Forbidden : StatusCodes.Status500InternalServerError,
                        forbidden ? "Forbidden" : "InternalError",
                        message,
                        context.RequestAborted,
                        decision.Reason);
                    return;
                }
            }

            await next(context);
        });
        app.UseRouting();
        app.MapGet("/healthz", context => WriteTextAsync(context, StatusCodes.Status200OK, "ok", context.RequestAborted));
        app.MapPrometheusScrapingEndpoint("/metrics");
        var stats = new ResourceStatsEndpoints(_usage, _options.NodeName, _logRoot, _time, () => NodeUsage.Read());
        app.MapGet("/metrics/resource", stats.ResourceMetricsAsync);
        app.MapGet("/stats/summary", stats.SummaryAsync);
        app.MapGet("/pods", context =>
        {
            var list = new V1PodList { ApiVersion = "v1", Kind = "PodList", Metadata = new V1ListMeta(), Items = [.. _pods.Pods()] };
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(KubernetesJson.Serialize(list), context.RequestAborted);
        });
        app.MapGet("/containerLogs/{namespace}/{pod}/{container}", async context =>
        {
            var values = context.Request.RouteValues;
            using var abort = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            try
            {
                await logs.HandleAsync(context, (string)values["namespace"]!, (string)values["pod"]!, (string)values["container"]!, abort.Token);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                // The client went away, or the server is stopping: the stream just ends.
            }
        });
        _routes?.Invoke(app);
        UnsupportedEndpoints.Map(app);
        app.Map("{**path}", context =>
        {
            // A path the API serves with GET, asked with another method: the kubelet's go-restful answers 405.
            if (ServedWithGet(context.Request.Path))
            {
                context.Response.Headers.Allow = "GET";
                return WriteTextAsync(context, StatusCodes.Status405MethodNotAllowed, $"405: Method Not Allowed: {context.Request.Method} {context.Request.Path} (it takes GET)", context.RequestAborted);
            }

            return WriteTextAsync(context, StatusCodes.Status404NotFound, $"404 page not found: {context.Request.Method} {context.Request.Path}", context.RequestAborted);
        });
        return app;
    }

    private static bool ServedWithGet(PathString path) =>
        path.Value is "/healthz" or "/metrics" or "/metrics/resource" or "/stats/summary" or "/pods"
        || (path.StartsWithSegments("/containerLogs", out var rest) && rest.Value?.Split('/', StringSplitOptions.RemoveEmptyEntries).Length == 3);

    [LoggerMessage(4000, LogLevel.Information, "Kubelet API listening on https://{Endpoint} (certificate {Subject}, valid until {NotAfter:o}; authorization {Mode})")]
    private static partial void LogStarted(ILogger logger, string endpoint, string subject, DateTime notAfter, string mode);

    [LoggerMessage(4003, LogLevel.Information, "Kubelet API: {Method} {Path}: {Message} ({Reason})")]
    private static partial void LogNotAuthorized(ILogger logger, string method, string path, string message, string reason);

    [LoggerMessage(4004, LogLevel.Information, "Kubelet API now presents certificate {Subject}, valid until {NotAfter:o}")]
    private static partial void LogCertificateReplaced(ILogger logger, string subject, DateTime notAfter);

    [LoggerMessage(4001, LogLevel.Warning, "Kubelet API: no client CA, no bearer token, no token webhook and no anonymous access are configured, so every request except /healthz is refused")]
    private static partial void LogNoCredentials(ILogger logger);

    [LoggerMessage(4002, LogLevel.Debug, "Kubelet API refused {Path} from {Remote}: {Problem}")]
    private static partial void LogRefused(ILogger logger, string path, string remote, string problem);
}
