using System.Net;
using Krustlet.Host.Tests.Support;

namespace Krustlet.Host.Tests.Standalone;

/// <summary>
/// The real <c>krustlet</c> process in standalone mode: killed with SIGKILL and started again, it re-adopts
/// its pods (restart counts and logs kept, <c>previous=true</c> serves the killed run's log) and forgets the
/// pods removed while it was down; stopped with SIGTERM, it exits 0 and is re-adopted again.
/// </summary>
[TestClass]
public sealed class RestartRecoveryTests
{
    private const string Node = "recovery-node";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task A_killed_agent_readopts_its_pods_keeps_their_logs_and_forgets_deleted_ones()
    {
        var ct = TestContext.CancellationToken;
        var root = Directory.CreateTempSubdirectory("krustlet-recovery-").FullName;
        var manifests = Directory.CreateDirectory(Path.Combine(root, "pods")).FullName;
        File.Copy(Path.Combine(ExampleFiles.Pods, "counter.yaml"), Path.Combine(manifests, "counter.yaml"));
        File.Copy(Path.Combine(ExampleFiles.Pods, "hello.yaml"), Path.Combine(manifests, "hello.yaml"));
        var dataDir = Path.Combine(root, "data");
        var tokenFile = Path.Combine(root, "token");
        await File.WriteAllTextAsync(tokenFile, "recovery-test-token\n", ct);
        string[] arguments = ["standalone", manifests, "--images", ExampleFiles.Layout, "--data-dir", dataDir, "--node-name", Node, "--address", "127.0.0.1", "--port", "0", "--token-file", tokenFile];

        // First run: the counter runs and logs, hello completes.
        string helloUid;
        string firstRunLine;
        await using (var first = AgentProcess.Start(arguments))
        {
            using var api = await AgentApi.ConnectAsync(first, "recovery-test-token", ct);
            await first.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"counter-{Node}" && m.Groups["status"].Value == "Running", ct);
            await first.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"hello-{Node}" && m.Groups["status"].Value == "Completed", ct);
            helloUid = (await AgentApi.PodsAsync(api, ct)).Single(p => p.Metadata.Name == $"hello-{Node}").Metadata.Uid;

            // A line the counter wrote, read as it was written.
            using var follow = await api.GetAsync($"containerLogs/default/counter-{Node}/counter?follow=true", HttpCompletionOption.ResponseHeadersRead, ct);
            using var reader = new StreamReader(await follow.Content.ReadAsStreamAsync(ct));
            firstRunLine = (await reader.ReadLineAsync(ct))!;
            StringAssert.StartsWith(firstRunLine, "count ");

            await first.KillAsync(ct);
        }

        // While the agent is down, hello's manifest is removed.
        File.Delete(Path.Combine(manifests, "hello.yaml"));

        // Second run: the counter is re-adopted with one more restart; hello leaves nothing behind.
        await using (var second = AgentProcess.Start(arguments))
        {
            using var api = await AgentApi.ConnectAsync(second, "recovery-test-token", ct);
            await second.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"counter-{Node}" && m.Groups["status"].Value == "Running" && m.Groups["restarts"].Value == "1", ct);

            var pods = await AgentApi.PodsAsync(api, ct);
            Assert.IsFalse(pods.Any(p => p.Metadata.Name == $"hello-{Node}"), "hello was removed while the agent was down");
            var counter = pods.Single(p => p.Metadata.Name == $"counter-{Node}").Status.ContainerStatuses.Single();
            Assert.AreEqual(1, counter.RestartCount);
            Assert.AreEqual(137, counter.LastState.Terminated.ExitCode);
            Assert.AreEqual("The node agent stopped while the container was running.", counter.LastState.Terminated.Message);
            Assert.IsNotNull(counter.State.Running);

            var previous = await api.GetStringAsync($"containerLogs/default/counter-{Node}/counter?previous=true", ct);
            StringAssert.Contains(previous, firstRunLine + "\n", "previous=true serves the killed run's log");
            using (var current = await api.GetAsync($"containerLogs/default/counter-{Node}/counter?follow=true", HttpCompletionOption.ResponseHeadersRead, ct))
            {
                using var reader = new StreamReader(await current.Content.ReadAsStreamAsync(ct));
                Assert.AreEqual("count 1", await reader.ReadLineAsync(ct), "the new run starts counting again");
            }

            Assert.IsFalse(File.Exists(Path.Combine(dataDir, "state", $"{helloUid}.json")));
            Assert.IsFalse(Directory.EnumerateDirectories(Path.Combine(dataDir, "logs")).Any(d => d.EndsWith(helloUid, StringComparison.Ordinal)));
            using var anonymous = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator }) { BaseAddress = api.BaseAddress };
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("pods", ct)).StatusCode);

            // A manifest added while the agent runs starts its pod.
            File.Copy(Path.Combine(ExampleFiles.Pods, "crashloop.yaml"), Path.Combine(manifests, "crashloop.yaml"));
            await second.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"crashloop-{Node}" && m.Groups["status"].Value is "Running" or "Error" or "CrashLoopBackOff", ct);

            // SIGTERM: the pods stop, the agent exits 0.
            Assert.AreEqual(0, await second.TerminateAsync(ct), second.Output);
            StringAssert.Contains(second.Output, "stopped:");
        }

        // Third run after a clean stop: re-adopted again.
        await using (var third = AgentProcess.Start(arguments))
        {
            await third.WaitForLineAsync(l => AgentApi.TableRow().Match(l) is { Success: true } m && m.Groups["name"].Value == $"counter-{Node}" && m.Groups["status"].Value == "Running" && m.Groups["restarts"].Value == "2", ct);
            Assert.AreEqual(0, await third.TerminateAsync(ct), third.Output);
        }

        Directory.Delete(root, recursive: true);
    }
}
