using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Replay;

namespace Krustlet.Pipeline.Tests.Replay;

/// <summary>
/// A recorded stream replayed as fast as possible through a graph whose stages mix synchronous and
/// asynchronous work, with small capacities so that lanes fill and senders wait: nothing is left
/// pending, and every pod's work runs in the stream's order, ending with its last event.
/// </summary>
[TestClass]
public sealed class ReplayThroughPipelineTests
{
    private static readonly string[] StageNames = ["Admission", "ImagePull", "Compile", "VolumeSetup", "Run"];

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Objects are {"id": "...", "v": n}.</summary>
    private sealed class VersionDecoder : IWatchEventDecoder<int>
    {
        public PipelineEvent<int>? Decode(string type, JsonElement obj, out string? error)
        {
            error = null;
            var id = obj.GetProperty("id").GetString()!;
            var v = obj.GetProperty("v").GetInt32();
            return type == "DELETED" ? PipelineEvent<int>.Delete(id, v) : PipelineEvent<int>.Upsert(id, v);
        }
    }

    private static string Stream(int pods, int rounds)
    {
        var text = new StringBuilder();
        var version = 0;
        for (var round = 0; round < rounds; round++)
        {
            var type = round == 0 ? "ADDED" : round == rounds - 1 ? "DELETED" : "MODIFIED";
            for (var p = 0; p < pods; p++)
            {
                text.Append("{\"type\":\"").Append(type).Append("\",\"object\":{\"id\":\"pod-").Append(p).Append("\",\"v\":").Append(++version).Append("}}\n");
            }
        }

        return text.ToString();
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(3, 400)]
    [DataRow(300, 20)]
    public async Task A_replayed_stream_leaves_nothing_pending_and_keeps_each_pods_order(int pods, int rounds)
    {
        var violations = new ConcurrentQueue<string>();
        var active = new ConcurrentDictionary<string, int>();
        var lastSeen = new ConcurrentDictionary<(string Stage, string Key, EventKind Kind), int>();

        async ValueTask<StageOutcome> Check(string stage, WorkItem<int> item)
        {
            if (active.AddOrUpdate(item.Key, 1, (_, n) => n + 1) > 1)
            {
                violations.Enqueue($"{stage}: {item.Key} ran twice at once");
            }

            var previous = lastSeen.GetValueOrDefault((stage, item.Key, item.Kind), 0);
            if (item.Value <= previous)
            {
                violations.Enqueue($"{stage}: {item.Key} saw {item.Value} after {previous}");
            }

            lastSeen[(stage, item.Key, item.Kind)] = item.Value;

            // Every other item finishes asynchronously: lanes see both kinds of stage.
            if (item.Value % 2 == 0)
            {
                await Task.Yield();
            }

            active.AddOrUpdate(item.Key, 0, (_, n) => n - 1);
            return StageOutcome.Continue;
        }

        var stages = StageNames.Select(name => new DelegateStage<int>(name, (item, _) => Check(name, item), (item, _) => Check(name, item)));
        var sink = new RecordingSink<int>();
        var pipeline = TestPipelines.Build(stages, sink, TestPipelines.Options(StageNames, parallelism: 2, capacity: 3));
        var text = Stream(pods, rounds);
        var source = new WatchStreamReplaySource<int>(() => new StringReader(text), "test", new VersionDecoder());

        await pipeline.RunAsync(source, TestContext.CancellationToken);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);
        var report = await pipeline.StopAsync();

        Assert.IsEmpty(violations, string.Join("\n", violations.Take(10)));
        Assert.AreEqual((long)pods * rounds, source.Played);
        Assert.IsEmpty(report.AbandonedKeys, "no event was left waiting");
        Assert.IsTrue(report.Clean, "nothing was in flight at the end");
        Assert.AreEqual(0, pipeline.InFlight);
        foreach (var p in Enumerable.Range(0, pods))
        {
            var results = sink.For($"pod-{p}");
            var last = results[^1];
            Assert.AreEqual(EventKind.Delete, last.Item.Kind, $"pod-{p}'s last work item is its deletion");
            Assert.AreEqual(((rounds - 1) * pods) + p + 1, last.Item.Value, $"pod-{p}'s deletion carries its last event");
            CollectionAssert.AreEqual(results.Select(r => r.Item.Version).Order().ToArray(), results.Select(r => r.Item.Version).ToArray(), $"pod-{p}'s work items reached the sink in order");
        }
    }
}
