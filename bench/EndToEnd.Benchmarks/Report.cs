using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Krustlet.EndToEnd.Benchmarks;

/// <summary>Markdown tables of a run's results, for docs/benchmarks.md.</summary>
internal static class Report
{
    public static string Markdown(JsonObject r)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Command: `{r["command"]}`, started {r["started"]}, finished {r["finished"]}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {r["machine"]?.ToJsonString()}").AppendLine();

        if (r["floor"] is JsonObject floor)
        {
            md.AppendLine("| run of the sleeper (returns at once) | n | p50 | p90 | p99 |").AppendLine("|---|---:|---:|---:|---:|");
            Row(md, "bare Wasmtime (floor)", floor["bareWasmtime"]);
            Row(md, "bare, own Linker + DefineWasi per run", floor["bareWithOwnLinker"]);
            Row(md, "bare, own Linker, on a new 4 MiB-stack thread", floor["bareWithOwnLinkerOnNewThread"]);
            Row(md, "executor pool (adds log file, WASI callbacks, epoch callback)", floor["executorPool"]);
            md.AppendLine();
        }

        if (r["warmStart"] is JsonObject warm)
        {
            md.AppendLine("| warm start (image pulled and compiled) | pods | p50 | p90 | p99 | max | burst | pods/s | p50 ÷ floor p50 |").AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            var floorP50 = r["floor"]?["bareWasmtime"]?["p50Ms"]?.GetValue<double>() ?? double.NaN;
            foreach (var (label, scales) in warm)
            {
                foreach (var (n, s) in scales!.AsObject())
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {n} | {Ms(s!["p50Ms"])} | {Ms(s["p90Ms"])} | {Ms(s["p99Ms"])} | {Ms(s["maxMs"])} | {Ms(s["burstMs"])} | {Num(s["podsPerSecond"])} | {s["p50Ms"]!.GetValue<double>() / floorP50:0}× |");
                }
            }

            md.AppendLine();
        }

        if (r["coldStart"] is JsonObject cold)
        {
            md.AppendLine("| cold start, one pod at a time, own image | n | p50 | p90 | p99 |").AppendLine("|---|---:|---:|---:|---:|");
            Row(md, "pull + compile + start", cold);
            md.AppendLine();
        }

        if (r["coldBurst"] is JsonObject burst)
        {
            md.AppendLine("| cold burst, pods sharing one new image | p50 | p90 | p99 | burst | registry requests | manifest GETs | blob GETs | compiles |").AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (n, s) in burst)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {n} | {Ms(s!["p50Ms"])} | {Ms(s["p90Ms"])} | {Ms(s["p99Ms"])} | {Ms(s["burstMs"])} | {s["registryRequests"]} | {s["manifestGets"]} | {s["blobGets"]} | {s["compiles"]} |");
            }

            md.AppendLine();
        }

        if (r["agentCache"] is JsonObject cache)
        {
            md.AppendLine("| one pod through the whole agent | n | p50 | p90 | p99 |").AppendLine("|---|---:|---:|---:|---:|");
            foreach (var key in new[] { "coldPullAndCompile", "restartedAgentImageStoredCompileFromScratch", "restartedAgentDiskCompileCache", "sameAgentMemoryCache" })
            {
                Row(md, key, cache[key]);
            }

            md.AppendLine();
        }

        if (r["rubyCompileCache"] is JsonObject ruby)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| ruby+stdlib.wasm ({ruby["bytes"]} bytes; artifact {ruby["artifactBytes"]} bytes) | time |").AppendLine("|---|---:|");
            md.AppendLine(CultureInfo.InvariantCulture, $"| compile (cold cache) | {Ms(ruby["compileMs"])} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| disk cache (p50 of {ruby["diskCache"]!["n"]}) | {Ms(ruby["diskCache"]!["p50Ms"])} |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| memory cache (p50 of {ruby["memoryCache"]!["n"]}) | {Ms(ruby["memoryCache"]!["p50Ms"])} |").AppendLine();
        }

        if (r["throughput"]?["byPods"] is JsonObject throughput)
        {
            md.AppendLine("| replayed events | pods | total | events/s | work items applied | status writes | replay source alone (no pipeline) |").AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (n, s) in throughput)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {s!["events"]} | {n} | {Ms(s["totalMs"])} | {Num(s["eventsPerSecond"])} | {s["workItemsApplied"]} | {s["statusWrites"]} | {Ms(s["sourceAloneMs"])} ({Num(s["sourceAloneEventsPerSecond"])} events/s) |");
            }

            md.AppendLine();
        }

        if (r["engineProbe"] is JsonObject probe)
        {
            md.AppendLine("| Wasmtime setting (500 live instances of the sleeper) | maps per instance | VmSize per instance | RSS per instance | instantiate p50 | p99 |").AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (label, s) in probe)
            {
                if (s!["instantiate"] is { } inst)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {s["mapsPerInstance"]} | {s["vmSizePerInstanceMiB"]} MiB | {s["rssPerInstanceKiB"]} KiB | {Ms(inst["p50Ms"])} | {Ms(inst["p99Ms"])} |");
                }
                else if (s["mapsPerThread"] is { } maps)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {maps} per thread | {s["vmSizePerThreadMiB"]} MiB | {s["rssPerThreadKiB"]} KiB | | |");
                }
                else
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {s["error"]} | | | | |");
                }
            }

            md.AppendLine();
        }

        if (r["density"] is JsonObject density)
        {
            md.AppendLine("| engine | pods | add step | RSS | RSS per pod | VmSize per pod | threads | open files | maps | maps per pod | idle CPU (cores) |").AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (label, run) in density)
            {
                foreach (var s in run!["steps"]!.AsArray().Where(s => s!["baseline"] is null))
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {s!["pods"]} | {Ms(s["addStepMs"])} | {s["rssKiB"]!.GetValue<long>() / 1024} MiB | {s["rssPerPodKiB"]} KiB | {s["vmSizePerPodMiB"]} MiB | {s["threads"]} | {s["openFiles"]} | {s["maps"]} | {s["mapsPerPod"]} | {s["idleCpuCores"]} |");
                }
            }

            md.AppendLine();
            foreach (var (label, run) in density)
            {
                var b = run!["steps"]!.AsArray().FirstOrDefault(s => s!["baseline"] is not null);
                md.AppendLine(CultureInfo.InvariantCulture, $"Baseline ({label}, agent started, no pods): RSS {b?["rssKiB"]} KiB, {b?["threads"]} threads, {b?["openFiles"]} open files, {b?["maps"]} maps.").AppendLine();

                md.AppendLine(CultureInfo.InvariantCulture, $"Density ({label}): all pods running up to **{run!["summary"]?["maxPodsAllRunning"]}**; limit: {run["summary"]?["limit"]} (child exit code {run["childExitCode"]}).").AppendLine();
            }
        }

        return md.ToString();
    }

    private static void Row(StringBuilder md, string label, JsonNode? s)
    {
        if (s is not null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {s["n"]} | {Ms(s["p50Ms"])} | {Ms(s["p90Ms"])} | {Ms(s["p99Ms"])} |");
        }
    }

    private static string Ms(JsonNode? value)
    {
        var ms = value?.GetValue<double>() ?? double.NaN;
        return ms switch
        {
            < 1 => string.Create(CultureInfo.InvariantCulture, $"{ms * 1000:0.#} µs"),
            < 1000 => string.Create(CultureInfo.InvariantCulture, $"{ms:0.##} ms"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.##} s"),
        };
    }

    private static string Num(JsonNode? value) => (value?.GetValue<double>() ?? double.NaN).ToString("#,0", CultureInfo.InvariantCulture);
}
