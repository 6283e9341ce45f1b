using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Krustlet.Stages.Run;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// <c>/stats/summary</c> (the kubelet's Summary API, stats/v1alpha1) and <c>/metrics/resource</c> (the
/// kubelet's resource metrics in Prometheus text, what metrics-server scrapes) over the running
/// containers' usage: CPU the executor spent running each guest and each guest's linear memory, and for
/// the node the agent process's CPU and resident memory with the machine's available memory.
/// <c>usageNanoCores</c> is the rate since the previous scrape of the same run (the first: since it started).
/// </summary>
internal sealed class ResourceStatsEndpoints(IPodUsageSource? usage, string nodeName, string logRoot, TimeProvider time, Func<NodeUsage> node)
{
    private static readonly DateTimeOffset ProcessStart = new(System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime());

    private readonly Lock _lock = new();
    private Dictionary<string, (DateTimeOffset At, long Cpu)> _previous = new(StringComparer.Ordinal);

    public Task SummaryAsync(HttpContext context)
    {
        var (now, nodeUsage, pods) = Sample();
        var rates = Rates(now, nodeUsage, pods);
        var summary = new JsonObject
        {
            ["node"] = new JsonObject
            {
                ["nodeName"] = nodeName,
                ["startTime"] = Time(ProcessStart),
                ["cpu"] = Cpu(now, rates.GetValueOrDefault(NodeKey), nodeUsage.CpuNanoseconds),
                ["memory"] = Memory(now, nodeUsage.RssBytes, nodeUsage.AvailableBytes),
            },
            ["pods"] = new JsonArray([.. pods.Select(pod => (JsonNode)new JsonObject
            {
                ["podRef"] = new JsonObject { ["name"] = pod.Name, ["namespace"] = pod.Namespace, ["uid"] = pod.Uid },
                ["startTime"] = Time(pod.StartTime),
                ["containers"] = new JsonArray([.. pod.Containers.Select(c => (JsonNode)new JsonObject
                {
                    ["name"] = c.Name,
                    ["startTime"] = Time(c.StartedAt),
                    ["cpu"] = Cpu(now, rates.GetValueOrDefault(Key(pod, c)), c.CpuNanoseconds),
                    ["memory"] = Memory(now, c.MemoryBytes, null),
                    ["logs"] = new JsonObject { ["time"] = Time(now), ["usedBytes"] = LogBytes(pod, c.Name) },
                })]),
                ["cpu"] = Cpu(now, pod.Containers.Sum(c => rates.GetValueOrDefault(Key(pod, c))), pod.Containers.Sum(c => c.CpuNanoseconds)),
                ["memory"] = Memory(now, pod.Containers.Sum(c => c.MemoryBytes), null),
            })]),
        };
        return KubeletServer.WriteWholeAsync(context, StatusCodes.Status200OK, "application/json", summary.ToJsonString(), context.RequestAborted);
    }

    public Task ResourceMetricsAsync(HttpContext context)
    {
        var (now, nodeUsage, pods) = Sample();
        var ms = now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var text = new StringBuilder();
        void Family(string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, value) in samples)
            {
                text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append(' ').Append(ms).Append('\n');
            }
        }

        var containers = pods.SelectMany(p => p.Containers.Select(c => (Labels: $"{{container=\"{Escape(c.Name)}\",namespace=\"{Escape(p.Namespace)}\",pod=\"{Escape(p.Name)}\"}}", Usage: c))).ToList();
        var podLabels = pods.Select(p => (Labels: $"{{namespace=\"{Escape(p.Namespace)}\",pod=\"{Escape(p.Name)}\"}}", Pod: p)).ToList();
        // As the kubelet writes them: families by name, each with HELP and TYPE, every sample with its time in ms.
        Family("container_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", containers.Select(c => (c.Labels, Seconds(c.Usage.CpuNanoseconds))));
        Family("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes", containers.Select(c => (c.Labels, (double)c.Usage.MemoryBytes)));
        Family("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds", containers.Select(c => (c.Labels, c.Usage.StartedAt.ToUnixTimeMilliseconds() / 1e3)));
        Family("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", nodeUsage.CpuNanoseconds is { } cpu ? [(string.Empty, Seconds(cpu))] : []);
        Family("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes", nodeUsage.RssBytes is { } rss ? [(string.Empty, (double)rss)] : []);
        Family("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", podLabels.Select(p => (p.Labels, Seconds(p.Pod.Containers.Sum(c => c.CpuNanoseconds)))));
        Family("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes", podLabels.Select(p => (p.Labels, (double)p.Pod.Containers.Sum(c => c.MemoryBytes))));
        text.Append("# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\n");
        text.Append("scrape_error ").Append(nodeUsage.CpuNanoseconds is null || nodeUsage.RssBytes is null ? '1' : '0').Append('\n');
        return KubeletServer.WriteWholeAsync(context, StatusCodes.Status200OK, "text/plain; version=0.0.4; charset=utf-8", text.ToString(), context.RequestAborted);
    }

    private const string NodeKey = "node";

    private (DateTimeOffset Now, NodeUsage Node, IReadOnlyList<PodUsageSample> Pods) Sample() =>
        (time.GetUtcNow(), node(), [.. (usage?.Usage() ?? []).OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)]);

    private static string Key(PodUsageSample pod, ContainerUsageSample container) =>
        string.Create(CultureInfo.InvariantCulture, $"{pod.Uid}/{container.Name}/{container.StartedAt.UtcTicks}");

    // CPU rate per run (and the node) since the previous scrape; runs no longer seen are forgotten.
    private Dictionary<string, long> Rates(DateTimeOffset now, NodeUsage nodeUsage, IReadOnlyList<PodUsageSample> pods)
    {
        var current = new Dictionary<string, (DateTimeOffset At, long Cpu, DateTimeOffset Since)>(StringComparer.Ordinal);
        if (nodeUsage.CpuNanoseconds is { } nodeCpu)
        {
            current[NodeKey] = (now, nodeCpu, ProcessStart);
        }

        foreach (var pod in pods)
        {
            foreach (var container in pod.Containers)
            {
                current[Key(pod, container)] = (now, container.CpuNanoseconds, container.StartedAt);
            }
        }

        lock (_lock)
        {
            var rates = current.ToDictionary(
                c => c.Key,
                c =>
                {
                    var (since, before) = _previous.TryGetValue(c.Key, out var previous) && previous.At < now ? (previous.At, previous.Cpu) : (c.Value.Since, 0L);
                    var seconds = (now - since).TotalSeconds;
                    return seconds > 0 ? (long)Math.Max(0, (c.Value.Cpu - before) / seconds) : 0;
                },
                StringComparer.Ordinal);
            _previous = current.ToDictionary(c => c.Key, c => (c.Value.At, c.Value.Cpu), StringComparer.Ordinal);
            return rates;
        }
    }

    private long LogBytes(PodUsageSample pod, string container)
    {
        try
        {
            var directory = new DirectoryInfo(PodLogLayout.ContainerDirectory(logRoot, pod.Namespace, pod.Name, pod.Uid, container));
            return directory.Exists ? directory.EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0; // a log rotated away while it was counted
        }
    }

    private static JsonObject Cpu(DateTimeOffset now, long nanoCores, long? coreNanoseconds)
    {
        var cpu = new JsonObject { ["time"] = Time(now), ["usageNanoCores"] = nanoCores };
        if (coreNanoseconds is { } total)
        {
            cpu["usageCoreNanoSeconds"] = total;
        }

        return cpu;
    }

    // A guest's memory is all its own and resident once touched: usage, working set and RSS are the same bytes.
    private static JsonObject Memory(DateTimeOffset now, long? bytes, long? available)
    {
        var memory = new JsonObject { ["time"] = Time(now) };
        if (available is { } free)
        {
            memory["availableBytes"] = free;
        }

        if (bytes is { } used)
        {
            memory["usageBytes"] = used;
            memory["workingSetBytes"] = used;
            memory["rssBytes"] = used;
        }

        return memory;
    }

    private static double Seconds(long nanoseconds) => nanoseconds / 1e9;

    /// <summary>RFC 3339 in seconds, as metav1.Time marshals.</summary>
    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
