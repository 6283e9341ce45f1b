using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// The kubelet's streaming endpoints a wasm container cannot serve (exec, attach, portForward, run, cri),
/// answered with a Kubernetes Status that says so, so <c>kubectl exec</c> prints the reason rather than
/// "404 page not found".
/// </summary>
internal static class UnsupportedEndpoints
{
    private static readonly (string Prefix, string Why)[] Endpoints =
    [
        ("exec", "a WebAssembly module has no shell or process in which to run a command"),
        ("attach", "a WebAssembly guest has no terminal to attach to; read its output with kubectl logs"),
        ("portForward", "wasm pods share the node's network and have no network namespace to forward into"),
        ("run", "a WebAssembly module has no shell or process in which to run a command"),
        ("cri", "this node has no container runtime (CRI) behind it: containers run in the agent's own process"),
    ];

    /// <summary>Maps every path under the endpoints (any method: exec and attach are POST or upgraded GETs).</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (var (prefix, why) in Endpoints)
        {
            app.Map($"/{prefix}/{{**rest}}", context => WriteAsync(context, prefix, why));
        }
    }

    private static Task WriteAsync(HttpContext context, string endpoint, string why) =>
        KubeletServer.WriteStatusAsync(context, StatusCodes.Status400BadRequest, "BadRequest", $"{endpoint} is not supported for wasm containers: {why}", context.RequestAborted);
}
