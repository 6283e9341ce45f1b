using System.Net;
using k8s;
using k8s.Models;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>exec, attach, portForward, run and cri answer a Status that says wasm containers do not support them.</summary>
[TestClass]
public sealed class UnsupportedEndpointsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("POST", "/exec/default/web/main?command=sh&stdin=true", "exec is not supported for wasm containers: a WebAssembly module has no shell or process in which to run a command")]
    [DataRow("GET", "/exec/default/web/uid-web/main?command=ls", "exec is not supported for wasm containers: a WebAssembly module has no shell or process in which to run a command")]
    [DataRow("POST", "/attach/default/web/main", "attach is not supported for wasm containers: a WebAssembly guest has no terminal to attach to; read its output with kubectl logs")]
    [DataRow("GET", "/portForward/default/web", "portForward is not supported for wasm containers: wasm pods share the node's network and have no network namespace to forward into")]
    [DataRow("POST", "/run/default/web/main", "run is not supported for wasm containers: a WebAssembly module has no shell or process in which to run a command")]
    [DataRow("GET", "/cri/exec/abc", "cri is not supported for wasm containers: this node has no container runtime (CRI) behind it: containers run in the agent's own process")]
    public async Task Streaming_endpoints_answer_a_status_saying_why(string method, string path, string message)
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var client = host.Authorized();
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        using var response = await client.SendAsync(request, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.AreEqual("application/json", response.Content.Headers.ContentType?.MediaType);
        var status = KubernetesJson.Deserialize<V1Status>(await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
        Assert.AreEqual("Status", status.Kind);
        Assert.AreEqual("Failure", status.Status);
        Assert.AreEqual(400, status.Code);
        Assert.AreEqual(message, status.Message);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task They_are_behind_authentication_like_every_other_path()
    {
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken);
        using var anonymous = host.Client();
        using var response = await anonymous.PostAsync(new Uri("/exec/default/web/main", UriKind.Relative), null, TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
