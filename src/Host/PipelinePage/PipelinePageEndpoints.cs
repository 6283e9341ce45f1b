using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Krustlet.Host.PipelinePage;

/// <summary>
/// The page's routes, the same on the loopback server and on the kubelet API: <c>/pipeline</c> and its
/// assets (embedded in this assembly), <c>/pipeline/events</c> (server-sent events, one snapshot per
/// interval), <c>/pipeline/pods?phase=&amp;page=&amp;size=</c> and <c>/pipeline/pods/{uid}</c>.
/// </summary>
public static class PipelinePageEndpoints
{
    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = new(StringComparer.Ordinal)
    {
        ["/pipeline"] = ("index.html", "text/html; charset=utf-8"),
        ["/pipeline/app.js"] = ("app.js", "text/javascript; charset=utf-8"),
        ["/pipeline/app.css"] = ("app.css", "text/css; charset=utf-8"),
    };

    public static void Map(IEndpointRouteBuilder routes, PipelinePageSource source, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(source);
        foreach (var (path, (resource, contentType)) in Assets)
        {
            var content = Asset(resource);
            routes.MapGet(path, context => KubeletApi.KubeletServer.WriteWholeAsync(context, StatusCodes.Status200OK, contentType, content, context.RequestAborted));
        }

        routes.MapGet("/pipeline/events", context => StreamAsync(context, source, stopping));
        routes.MapGet("/pipeline/pods", context =>
        {
            var query = context.Request.Query;
            var page = int.TryParse(query["page"], NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 0;
            var size = int.TryParse(query["size"], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 50;
            return Json(context, source.PodsPage(query["phase"], page, size));
        });
        routes.MapGet("/pipeline/pods/{uid}", context =>
            source.Pod((string)context.Request.RouteValues["uid"]!) is { } pod
                ? Json(context, pod)
                : KubeletApi.KubeletServer.WriteTextAsync(context, StatusCodes.Status404NotFound, "no such pod on this node", context.RequestAborted));
    }

    private static Task Json(HttpContext context, string json) =>
        KubeletApi.KubeletServer.WriteWholeAsync(context, StatusCodes.Status200OK, "application/json", json, context.RequestAborted);

    private static async Task StreamAsync(HttpContext context, PipelinePageSource source, CancellationToken stopping)
    {
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        try
        {
            var snapshot = source.Latest;
            while (true)
            {
                await context.Response.WriteAsync($"data: {snapshot}\n\n", abort.Token);
                await context.Response.Body.FlushAsync(abort.Token);
                snapshot = await source.NextAsync(abort.Token);
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // The viewer left, or the agent is stopping.
        }
    }

    private static string Asset(string name)
    {
        using var stream = typeof(PipelinePageEndpoints).Assembly.GetManifestResourceStream($"Krustlet.Host.PipelinePage.Assets.{name}")
            ?? throw new InvalidOperationException($"The pipeline page's asset {name} is not embedded.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
