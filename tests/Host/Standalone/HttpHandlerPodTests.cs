using System.Net;
using System.Net.Sockets;
using Krustlet.Host.Tests.Support;

namespace Krustlet.Host.Tests.Standalone;

/// <summary>
/// The README's HTTP example for real: the <c>krustlet</c> process in standalone mode runs
/// examples/pods/web.yaml (on a free port instead of 8080), curl reaches it on loopback, the pod turns
/// Ready, a second pod on the same port is refused with NodePorts, and removing the manifest closes the
/// listener.
/// </summary>
[TestClass]
public sealed class HttpHandlerPodTests
{
    private const string Node = "http-node";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task The_web_example_serves_curl_turns_Ready_refuses_a_second_pod_on_its_port_and_closes_when_removed()
    {
        var ct = TestContext.CancellationToken;
        var root = Directory.CreateTempSubdirectory("krustlet-http-").FullName;
        var manifests = Directory.CreateDirectory(Path.Combine(root, "pods")).FullName;
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var manifest = (await File.ReadAllTextAsync(Path.Combine(ExampleFiles.Pods, "web.yaml"), ct)).Replace("containerPort: 8080", $"containerPort: {port}", StringComparison.Ordinal);
        Assert.IsTrue(manifest.Contains($"containerPort: {port}", StringComparison.Ordinal), "the example declares port 8080");
        await File.WriteAllTextAsync(Path.Combine(manifests, "web.yaml"), manifest, ct);
        var tokenFile = Path.Combine(root, "token");
        await File.WriteAllTextAsync(tokenFile, "http-test-token\n", ct);
        string[] arguments = ["standalone", manifests, "--images", ExampleFiles.Layout, "--data-dir", Path.Combine(root, "data"), "--node-name", Node, "--address", "127.0.0.1", "--port", "0", "--page-port", "-1", "--token-file", tokenFile];

        await using (var agent = AgentProcess.Start(arguments))
        {
            using var api = await AgentApi.ConnectAsync(agent, "http-test-token", ct);
            await agent.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"web-{Node}" && m.Groups["ready"].Value == "1/1", ct);

            var hello = Tool.Run("curl", "-sS", "--fail", $"http://127.0.0.1:{port}/hello?name=you");
            Assert.AreEqual("Hello from a WebAssembly HTTP handler: GET /hello?name=you (served by krustlet)\n", hello);
            var posted = Tool.Run("curl", "-sS", "--fail", "-d", "some data", $"http://127.0.0.1:{port}/hello");
            StringAssert.Contains(posted, "you sent: some data");
            var missing = Tool.Run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{port}/nope");
            Assert.AreEqual("404", missing);

            var web = (await AgentApi.PodsAsync(api, ct)).Single(p => p.Metadata.Name == $"web-{Node}");
            Assert.AreEqual("True", web.Status.Conditions.Single(c => c.Type == "Ready").Status);
            Assert.AreEqual(port, web.Spec.Containers[0].Ports.Single().ContainerPort);

            // A second pod asking for the same port is refused at admission, as the kubelet refuses a host port conflict.
            await File.WriteAllTextAsync(Path.Combine(manifests, "web2.yaml"), manifest.Replace("name: web\n", "name: web2\n", StringComparison.Ordinal), ct);
            await agent.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"web2-{Node}" && m.Groups["status"].Value == "NodePorts", ct);
            var refused = (await AgentApi.PodsAsync(api, ct)).Single(p => p.Metadata.Name == $"web2-{Node}");
            Assert.AreEqual("Failed", refused.Status.Phase);
            StringAssert.Contains(refused.Status.Message, $"port {port}");

            // Removing the manifest deletes the pod: its listener closes.
            File.Delete(Path.Combine(manifests, "web.yaml"));
            await WaitForRefusedAsync(port, api, ct);
            Assert.AreEqual(0, await agent.TerminateAsync(ct), agent.Output);
        }

        Directory.Delete(root, recursive: true);
    }

    // The pod leaves the agent's list once its teardown (which closes the listener) is done; from then
    // on a connection is refused. The list is read again until then (the test's timeout bounds it).
    private static async Task WaitForRefusedAsync(int port, HttpClient api, CancellationToken cancellationToken)
    {
        while ((await AgentApi.PodsAsync(api, cancellationToken)).Any(p => p.Metadata.Name == $"web-{Node}"))
        {
            await Task.Delay(50, cancellationToken);
        }

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsExactlyAsync<SocketException>(async () => await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken));
        Assert.AreEqual(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
