using System.Diagnostics;
using System.Text.Json.Nodes;
using Krustlet.Host.Tests.Support;

namespace Krustlet.Host.Tests.Soak;

/// <summary>
/// The fault soak (#18 item 2): 10,000 pod events for 500 pods of a real image, through the real agent
/// process (real pulls, real Wasmtime) against the API emulator while it cuts the watch every 400
/// events, answers 410 Gone twice, bursts of 500 and of 429 with Retry-After on status writes and is
/// slow (20 ms an answer) while the pods run; the agent is SIGKILLed once and started again. Every pod ends as the last spec asks
/// (deleted ones gone, the others Succeeded), no status goes backwards, a pod that had finished before
/// the kill is not run again, and the API requests stay within Api:Qps and Api:Burst.
/// </summary>
[TestClass]
public sealed class FaultSoakTests
{
    private const int Pods = 500;
    private const int Events = 10_000;
    private const int Deletes = 100;
    private const double Qps = 400;
    private const int Burst = 800;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task Ten_thousand_pod_events_through_cut_watches_410s_500s_429s_slow_answers_and_a_SIGKILL_end_as_the_last_spec_asks()
    {
        var ct = TestContext.CancellationToken;
        await using var api = await ApiEmulator.StartAsync(ct);
        await using var registry = await LocalRegistry.StartAsync(basicAuth: false, ct);
        var dir = Directory.CreateTempSubdirectory("krustlet-soak-").FullName;
        var kubeconfig = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"));
        var image = $"{registry.Host}/soak/hello:v1";
        using (var push = new StringWriter())
        {
            Assert.AreEqual(0, await Program.BuildCommand(push).Parse(["image", "push", WasmFixtures.C("hello"), image, "--data-dir", Path.Combine(dir, "push")]).InvokeAsync(cancellationToken: ct), push.ToString());
        }

        var data = Path.Combine(dir, "data");
        string[] arguments = ["node", "--kubeconfig", kubeconfig, "--node-name", "soak", "--node-ip", "10.0.0.9", "--data-dir", data, "--address", "127.0.0.1", "--port", "0", "--page-port", "-1", "--max-pods", "1000", "--kube-api-qps", Qps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--kube-api-burst", Burst.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        var agent = AgentProcess.Start(arguments);
        try
        {
            await api.WaitForAsync("leases", "kube-node-lease", "soak", _ => true, ct);
            var watches = 1;
            await api.WatchesOpened(watches).WaitAsync(ct);
            var started = Stopwatch.GetTimestamp();
            var faults = new Dictionary<string, int>(StringComparer.Ordinal);
            void Count(string fault) => faults[fault] = faults.GetValueOrDefault(fault) + 1;
            var random = new Random(18);
            var deleted = new HashSet<string>(StringComparer.Ordinal);
            var succeededBeforeKill = new HashSet<string>(StringComparer.Ordinal);
            var killedAt = 0L;
            for (var n = 1; n <= Events; n++)
            {
                if (n <= Pods)
                {
                    api.Put("pods", Pod($"soak-{n - 1:000}", image));
                }
                else if (n > Events - Deletes)
                {
                    var name = $"soak-{(n - (Events - Deletes) - 1) * (Pods / Deletes):000}";
                    api.Remove("pods", "default", name);
                    deleted.Add(name);
                }
                else
                {
                    var name = $"soak-{random.Next(Pods):000}";
                    api.Update("pods", "default", name, pod => pod["metadata"]!["labels"]!["generation"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }

                // The events are played far faster than a node takes them: each cut and expiry waits for the
                // agent to watch again, so the faults fall while it works, not after.
                switch (n)
                {
                    case var _ when n % 400 == 0:
                        api.CutWatches();
                        Count("watch cut");
                        await api.WatchesOpened(++watches).WaitAsync(ct);
                        break;
                    case 2_001 or 6_001:
                        api.ExpireWatches();
                        Count("410 Gone");
                        await api.WatchesOpened(++watches).WaitAsync(ct);
                        break;
                    // While the pods are created and run, their status writes meet bursts of 500 and 429, then slow answers.
                    case 100:
                        api.Fail("PATCH", "/namespaces/default/pods/", 500, count: 30);
                        break;
                    case 250:
                        api.Fail("PATCH", "/namespaces/default/pods/", 429, count: 30);
                        break;
                    case 300:
                        api.Latency = TimeSpan.FromMilliseconds(20);
                        Count("slow answers (20 ms each) until 50 pods had run");
                        break;
                    default:
                        break;
                }

                if (n == Pods)
                {
                    // Half the pods have run before the updates start, so the kill falls on finished pods too.
                    foreach (var i in Enumerable.Range(0, Pods / 2))
                    {
                        await api.WaitForAsync("pods", "default", $"soak-{i:000}", p => p["status"]?["phase"]?.GetValue<string>() == "Succeeded", ct);
                        if (i == 49)
                        {
                            api.Latency = TimeSpan.Zero;
                        }
                    }
                }

                if (n == 5_500)
                {
                    // SIGKILL: nothing of the agent runs on; it starts again over the same data directory.
                    await agent.KillAsync(ct);
                    killedAt = Stopwatch.GetTimestamp();
                    Count("SIGKILL and restart");
                    foreach (var pod in api.All("pods").Where(p => p["status"]?["phase"]?.GetValue<string>() == "Succeeded"))
                    {
                        succeededBeforeKill.Add(pod["metadata"]!["name"]!.GetValue<string>());
                    }

                    await agent.DisposeAsync();
                    agent = AgentProcess.Start(arguments);
                    await api.WatchesOpened(++watches).WaitAsync(ct);
                }

            }

            faults["500 on a pod status write"] = 30 - api.FaultsLeft(500);
            faults["429 with Retry-After on a pod status write"] = 30 - api.FaultsLeft(429);

            // Every pod as the last spec asks: the deleted ones gone, the others Succeeded.
            TestContext.WriteLine($"events played in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
            using var settle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            settle.CancelAfter(TimeSpan.FromSeconds(90));
            try
            {
                foreach (var i in Enumerable.Range(0, Pods))
                {
                    var name = $"soak-{i:000}";
                    if (!deleted.Contains(name))
                    {
                        await api.WaitForAsync("pods", "default", name, p => p["status"]?["phase"]?.GetValue<string>() == "Succeeded", settle.Token);
                    }
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                var phases = api.All("pods").GroupBy(p => $"{p["status"]?["phase"]?.GetValue<string>() ?? "none"} {p["status"]?["reason"]?.GetValue<string>()} {p["status"]?["containerStatuses"]?[0]?["state"]?.ToJsonString()}").Select(g => $"{g.Count()} x {g.Key}");
                Assert.Fail($"not every pod settled in 90 s:\n{string.Join("\n", phases.Take(12))}\nagent output (tail):\n{string.Join("\n", agent.Output.Split('\n').TakeLast(30))}");
            }

            var elapsed = Stopwatch.GetElapsedTime(started);
            var left = api.All("pods").Select(p => p["metadata"]!["name"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
            Assert.IsFalse(left.Overlaps(deleted), "a deleted pod came back");
            Assert.AreEqual(Pods - Deletes, left.Count);

            // No status goes backwards: once Succeeded, a pod is never written Pending or Running again.
            var order = new Dictionary<string, int>(StringComparer.Ordinal) { ["Pending"] = 0, ["Running"] = 1, ["Succeeded"] = 2, ["Failed"] = 2 };
            var backwards = new List<string>();
            foreach (var group in api.PodPhaseHistory().Where(p => p.Phase is not null).GroupBy(p => p.Pod))
            {
                var reached = 0;
                foreach (var (pod, phase) in group)
                {
                    if (order[phase!] < reached && reached == 2)
                    {
                        backwards.Add($"{pod}: {phase} after Succeeded");
                    }

                    reached = Math.Max(reached, order[phase!]);
                }
            }

            Assert.IsEmpty(backwards, string.Join("\n", backwards.Take(10)));

            // None run twice: a pod that had succeeded before the kill has only its first run's log.
            var logs = Path.Combine(data, "logs");
            var rerun = succeededBeforeKill.Where(name => !deleted.Contains(name) && Directory.GetDirectories(logs, $"default_{name}_*").SelectMany(d => Directory.GetFiles(Path.Combine(d, "main"))).Any(f => Path.GetFileName(f) != "0.log")).ToList();
            Assert.IsEmpty(rerun, $"run again after the restart: {string.Join(", ", rerun.Take(10))}");

            // Within Api:Qps and Api:Burst: no second saw more requests than the bucket allows (watches are exempt).
            long[] times = [.. api.RequestLog().Where(r => !r.Request.Contains("watch=true", StringComparison.Ordinal)).Select(r => r.At)];

            // Each agent has its own bucket: the killed one's requests and its successor's are counted apart.
            static int Worst(long[] times)
            {
                var worst = 0;
                for (int first = 0, last = 0; last < times.Length; last++)
                {
                    while (Stopwatch.GetElapsedTime(times[first], times[last]) > TimeSpan.FromSeconds(1))
                    {
                        first++;
                    }

                    worst = Math.Max(worst, last - first + 1);
                }

                return worst;
            }

            var worst = Math.Max(Worst([.. times.Where(t => t < killedAt)]), Worst([.. times.Where(t => t >= killedAt)]));
            TestContext.WriteLine($"{Events} events, {Pods} pods, {elapsed.TotalSeconds:0.0} s; faults survived: {string.Join(", ", faults.Select(f => $"{f.Key} x{f.Value}"))}; {times.Length} API requests, at most {worst} in one second");
            Assert.IsLessThanOrEqualTo((int)(Burst + Qps), worst, "requests of one agent in any second: at most its burst and a second's worth of its rate");
        }
        finally
        {
            await agent.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static JsonObject Pod(string name, string image) => JsonNode.Parse($$$"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"{{{name}}}","namespace":"default","labels":{"app":"soak"}},
         "spec":{"nodeName":"soak","restartPolicy":"Never","containers":[{"name":"main","image":"{{{image}}}"}],
                 "tolerations":[{"key":"kubernetes.io/arch","operator":"Equal","value":"wasm32-wasi"}]}}
        """)!.AsObject();
}
