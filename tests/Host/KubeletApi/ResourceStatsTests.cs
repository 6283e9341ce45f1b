using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using Krustlet.Host.KubeletApi;
using Krustlet.Host.KubeletApi.Auth;

namespace Krustlet.Host.Tests.KubeletApi;

/// <summary>
/// <c>/stats/summary</c> and <c>/metrics/resource</c> over real guests on the executor: CPU the executor
/// spent running each guest, each guest's linear memories and tables, the kubelet's shapes, and the kubelet API's auth.
/// Figures that appear only once a guest has run are waited for by scraping again after a 20 ms awaited
/// delay (a guest's progress has no event to wait on), bounded by each test's timeout.
/// </summary>
[TestClass]
public sealed class ResourceStatsTests
{
    private const string Spinner = """(module (memory (export "memory") 1) (func (export "_start") (loop $spin (br $spin))))""";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Cpu_of_a_spinning_guest_grows_between_two_scrapes()
    {
        await using var node = await WasmNode.StartAsync(TestContext.CancellationToken);
        await node.RunAsync(WasmNode.Pod("spinner", await node.PushAsync(WasmFixtures.Wat(Spinner), "spinner", TestContext.CancellationToken)), TestContext.CancellationToken);
        using var http = node.Client();

        var first = await ScrapeUntilAsync(http, m => CpuOf(m) > 0);
        var later = await ScrapeUntilAsync(http, m => CpuOf(m) > CpuOf(first));

        Assert.IsGreaterThan(CpuOf(first), CpuOf(later));
        Assert.AreEqual(65536, Sample(later, "container_memory_working_set_bytes", "container=\"main\",namespace=\"default\",pod=\"spinner\"").Value, "it never calls the host: its memory as instantiated, one page");
        Assert.AreEqual(CpuOf(later), Sample(later, "pod_cpu_usage_seconds_total", "namespace=\"default\",pod=\"spinner\"").Value, "one container: the pod's CPU is its container's");
        var summary = await SummaryAsync(http);
        var container = summary["pods"]![0]!["containers"]![0]!;
        Assert.IsGreaterThanOrEqualTo(CpuOf(later), container["cpu"]!["usageCoreNanoSeconds"]!.GetValue<long>() / 1e9, "the summary's counter is the same, read later");
        Assert.IsGreaterThan(0L, container["cpu"]!["usageNanoCores"]!.GetValue<long>());

        static double CpuOf(IReadOnlyList<PromSample> metrics) => Sample(metrics, "container_cpu_usage_seconds_total", "container=\"main\",namespace=\"default\",pod=\"spinner\"").Value;
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_guest_that_grew_its_memory_shows_more_bytes_than_one_that_did_not()
    {
        await using var node = await WasmNode.StartAsync(TestContext.CancellationToken);
        await node.RunAsync(WasmNode.Pod("grower", await node.PushAsync(WasmFixtures.C("grower"), "grower", TestContext.CancellationToken), "16"), TestContext.CancellationToken);
        await node.RunAsync(WasmNode.Pod("sleeper", await node.PushAsync(WasmFixtures.C("sleeper"), "sleeper", TestContext.CancellationToken), "1", "1000"), TestContext.CancellationToken);
        using var http = node.Client();

        // The shim records a guest's memory when it sleeps; the grower sleeps only once it has grown.
        var metrics = await ScrapeUntilAsync(http, m => MemoryOf(m, "grower") > 0 && MemoryOf(m, "sleeper") > 0);

        Assert.IsGreaterThanOrEqualTo(MemoryOf(metrics, "sleeper") + (16 * 1024 * 1024), MemoryOf(metrics, "grower"));
        var summary = await SummaryAsync(http);
        long WorkingSet(string pod) => summary["pods"]!.AsArray().Single(p => p!["podRef"]!["name"]!.GetValue<string>() == pod)!["containers"]![0]!["memory"]!["workingSetBytes"]!.GetValue<long>();
        Assert.IsGreaterThanOrEqualTo(WorkingSet("sleeper") + (16 * 1024 * 1024), WorkingSet("grower"));

        static double MemoryOf(IReadOnlyList<PromSample> metrics, string pod) =>
            metrics.SingleOrDefault(s => s.Name == "container_memory_working_set_bytes" && s.Labels.Contains($"pod=\"{pod}\"", StringComparison.Ordinal))?.Value ?? 0;
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_components_memory_is_its_grown_linear_memory_and_its_table()
    {
        // The component grows its memory from 2 to 32 pages, then spins: its figure is read at epoch ticks.
        var component = ComponentFixture.Around("""(module (memory 2) (table 10 funcref) (func (export "run") (result i32) (drop (memory.grow (i32.const 30))) (loop $spin (br $spin)) i32.const 0))""");
        await using var node = await WasmNode.StartAsync(TestContext.CancellationToken);
        await node.RunAsync(WasmNode.Pod("component", await node.PushAsync(component, "component", TestContext.CancellationToken)), TestContext.CancellationToken);
        using var http = node.Client();

        const double Expected = (32 * 65536) + (10 * 8);
        var metrics = await ScrapeUntilAsync(http, m => m.Any(s => s.Name == "container_memory_working_set_bytes" && s.Value == Expected));

        Assert.AreEqual(Expected, Sample(metrics, "pod_memory_working_set_bytes", "namespace=\"default\",pod=\"component\"").Value);
        var summary = await SummaryAsync(http);
        Assert.AreEqual((long)Expected, summary["pods"]![0]!["containers"]![0]!["memory"]!["workingSetBytes"]!.GetValue<long>());
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Summary_and_resource_metrics_have_the_kubelets_fields_names_labels_types_and_timestamps()
    {
        await using var node = await WasmNode.StartAsync(TestContext.CancellationToken);
        await node.RunAsync(WasmNode.Pod("sleeper", await node.PushAsync(WasmFixtures.C("sleeper"), "sleeper", TestContext.CancellationToken), "1", "1000"), TestContext.CancellationToken);
        using var http = node.Client();

        var summary = await SummaryAsync(http);
        var nodeStats = summary["node"]!;
        Assert.AreEqual("wasm-node", nodeStats["nodeName"]!.GetValue<string>());
        _ = DateTimeOffset.Parse(nodeStats["startTime"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        Assert.IsGreaterThan(0L, nodeStats["cpu"]!["usageCoreNanoSeconds"]!.GetValue<long>(), "the agent has run");
        Assert.IsNotNull(nodeStats["cpu"]!["usageNanoCores"]);
        Assert.IsNotNull(nodeStats["cpu"]!["time"]);
        foreach (var field in new[] { "usageBytes", "workingSetBytes", "rssBytes", "availableBytes" })
        {
            Assert.IsGreaterThan(0L, nodeStats["memory"]![field]!.GetValue<long>(), field);
        }

        var pod = summary["pods"]!.AsArray().Single()!;
        Assert.AreEqual("sleeper", pod["podRef"]!["name"]!.GetValue<string>());
        Assert.AreEqual("default", pod["podRef"]!["namespace"]!.GetValue<string>());
        Assert.AreEqual("uid-sleeper", pod["podRef"]!["uid"]!.GetValue<string>());
        Assert.IsNotNull(pod["startTime"]);
        Assert.IsNotNull(pod["cpu"]!["usageCoreNanoSeconds"]);
        Assert.IsNotNull(pod["memory"]!["workingSetBytes"]);
        var container = pod["containers"]!.AsArray().Single()!;
        Assert.AreEqual("main", container["name"]!.GetValue<string>());
        Assert.IsNotNull(container["startTime"]);
        Assert.IsNotNull(container["cpu"]!["usageCoreNanoSeconds"]);
        Assert.IsNotNull(container["memory"]!["workingSetBytes"]);
        Assert.IsGreaterThanOrEqualTo(0L, container["logs"]!["usedBytes"]!.GetValue<long>());

        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var response = await http.GetAsync(new Uri("/metrics/resource", UriKind.Relative), TestContext.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.CancellationToken);
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        Assert.AreEqual("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        var types = new Dictionary<string, string>
        {
            ["container_cpu_usage_seconds_total"] = "counter",
            ["container_memory_working_set_bytes"] = "gauge",
            ["container_start_time_seconds"] = "gauge",
            ["node_cpu_usage_seconds_total"] = "counter",
            ["node_memory_working_set_bytes"] = "gauge",
            ["pod_cpu_usage_seconds_total"] = "counter",
            ["pod_memory_working_set_bytes"] = "gauge",
            ["scrape_error"] = "gauge",
        };
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var (name, type) in types)
        {
            Assert.Contains($"# TYPE {name} {type}", lines, name);
            Assert.IsTrue(lines.Any(l => l.StartsWith($"# HELP {name} ", StringComparison.Ordinal)), name);
        }

        var samples = Parse(text);
        foreach (var name in new[] { "container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_start_time_seconds" })
        {
            Assert.AreEqual("container=\"main\",namespace=\"default\",pod=\"sleeper\"", samples.Single(s => s.Name == name).Labels, name);
        }

        Assert.AreEqual("namespace=\"default\",pod=\"sleeper\"", samples.Single(s => s.Name == "pod_memory_working_set_bytes").Labels);
        Assert.AreEqual(0, Sample(samples, "scrape_error", string.Empty).Value);
        Assert.IsNull(Sample(samples, "scrape_error", string.Empty).Timestamp, "the kubelet writes scrape_error without a time");
        foreach (var sample in samples.Where(s => s.Name != "scrape_error"))
        {
            Assert.IsTrue(sample.Timestamp >= before && sample.Timestamp <= after, $"{sample.Name} at {sample.Timestamp}, scraped in [{before}, {after}] ms");
        }

        var started = Sample(samples, "container_start_time_seconds", "container=\"main\",namespace=\"default\",pod=\"sleeper\"").Value;
        Assert.IsTrue(started > 0 && started * 1000 <= after, "the start time is seconds since the epoch");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Stats_and_resource_metrics_are_refused_without_credentials_and_authorized_as_stats_and_metrics()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = api.Url });
        await using var host = await KubeletApiHost.StartAsync(TestContext.CancellationToken, configure: o => o with { AuthorizationMode = KubeletAuthorizationMode.Webhook, AuthenticationTokenWebhook = true }, reviews: new KubernetesReviews(client));
        api.AddToken("scraper-token", "scraper", ["metrics"], "uid-scraper");
        api.Allow(new AccessRule("scraper", "get", "nodes", "stats", "wasm-node"));
        using var anonymous = host.Client();
        using var scraper = host.Client("scraper-token");

        Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/stats/summary", UriKind.Relative), TestContext.CancellationToken)).StatusCode);
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/metrics/resource", UriKind.Relative), TestContext.CancellationToken)).StatusCode);
        using var stats = await scraper.GetAsync(new Uri("/stats/summary", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, stats.StatusCode);
        Assert.IsEmpty(JsonNode.Parse(await stats.Content.ReadAsStringAsync(TestContext.CancellationToken))!["pods"]!.AsArray(), "no run stage: the node alone");
        using var metrics = await scraper.GetAsync(new Uri("/metrics/resource", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.Forbidden, metrics.StatusCode);
        Assert.AreEqual(
            "Forbidden (user=scraper, verb=get, resource=nodes, subresource(s)=[metrics])",
            JsonNode.Parse(await metrics.Content.ReadAsStringAsync(TestContext.CancellationToken))!["message"]!.GetValue<string>());
    }

    [TestMethod]
    public void Node_usage_is_the_agents_cpu_and_rss_and_the_machines_available_memory()
    {
        var proc = Directory.CreateTempSubdirectory("krustlet-proc-").FullName;
        Directory.CreateDirectory(Path.Combine(proc, "self"));
        // The command name may hold spaces and parentheses; utime (14th field) 250 and stime (15th) 50 ticks.
        File.WriteAllText(Path.Combine(proc, "self", "stat"), "4242 (krustlet (a b)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 1000 200\n");
        File.WriteAllText(Path.Combine(proc, "self", "status"), "Name:\tkrustlet\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\n");
        File.WriteAllText(Path.Combine(proc, "meminfo"), "MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n");

        var usage = NodeUsage.Read(proc);

        Assert.AreEqual(new NodeUsage(3_000_000_000, 2048L * 1024, 8_000_000L * 1024), usage);
        Assert.AreEqual(new NodeUsage(null, null, null), NodeUsage.Read(Path.Combine(proc, "missing")));
        Directory.Delete(proc, recursive: true);
    }

    /// <summary>One sample of Prometheus text: name, the labels between the braces, value, and the timestamp in ms if written.</summary>
    internal sealed record PromSample(string Name, string Labels, double Value, long? Timestamp);

    private static PromSample Sample(IReadOnlyList<PromSample> samples, string name, string labels) =>
        samples.SingleOrDefault(s => s.Name == name && s.Labels == labels) ?? new PromSample(name, labels, 0, null);

    private static List<PromSample> Parse(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).Select(line =>
        {
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var close = line.IndexOf('}', StringComparison.Ordinal);
            var name = brace >= 0 ? line[..brace] : line[..line.IndexOf(' ', StringComparison.Ordinal)];
            var labels = brace >= 0 ? line[(brace + 1)..close] : string.Empty;
            var rest = line[(brace >= 0 ? close + 1 : name.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return new PromSample(name, labels, double.Parse(rest[0], CultureInfo.InvariantCulture), rest.Length > 1 ? long.Parse(rest[1], CultureInfo.InvariantCulture) : null);
        })];

    private async Task<List<PromSample>> ScrapeUntilAsync(HttpClient http, Func<IReadOnlyList<PromSample>, bool> done)
    {
        while (true)
        {
            var samples = Parse(await http.GetStringAsync(new Uri("/metrics/resource", UriKind.Relative), TestContext.CancellationToken));
            if (done(samples))
            {
                return samples;
            }

            await Task.Delay(20, TestContext.CancellationToken);
        }
    }

    private async Task<JsonNode> SummaryAsync(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync(new Uri("/stats/summary", UriKind.Relative), TestContext.CancellationToken))!;
}
