using System.Collections.Concurrent;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Tests.Engine;

/// <summary>
/// Many pods, several producers, random interleavings and random stage timings. Every stage checks
/// that it never sees one key twice at once and that each key's versions only grow; the results are
/// checked against each key's script: the final state is the latest event, deletions are never lost.
/// </summary>
[TestClass]
public sealed class OrderingAndCoalescingTests
{
    private static readonly string[] StageNames = ["Admission", "ImagePull", "Compile", "VolumeSetup", "Run"];

    public TestContext TestContext { get; set; } = null!;

    private sealed record Spec(int Pod, int Version);

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(4)]
    public async Task Per_key_work_is_serial_ordered_and_coalesced_to_the_latest(int seed)
    {
        var random = new Random(seed);
        const int pods = 64;
        var scripts = Enumerable.Range(0, pods).Select(p => Script(p, random)).ToArray();

        var violations = new ConcurrentQueue<string>();
        var active = new ConcurrentDictionary<string, int>();
        var lastSeen = new ConcurrentDictionary<(string Stage, string Key), long>();

        async ValueTask<StageOutcome> Check(string stage, WorkItem<Spec> item, CancellationToken ct)
        {
            if (active.AddOrUpdate(item.Key, 1, (_, n) => n + 1) > 1)
            {
                violations.Enqueue($"{stage}: {item.Key} processed concurrently");
            }

            try
            {
                var version = item.Value!.Version;
                var previous = lastSeen.GetValueOrDefault((stage, item.Key), -1);
                if (version <= previous)
                {
                    violations.Enqueue($"{stage}: {item.Key} saw version {version} after {previous}");
                }

                lastSeen[(stage, item.Key)] = version;
                for (var i = Random.Shared.Next(4); i > 0; i--)
                {
                    await Task.Yield();
                }

                ct.ThrowIfCancellationRequested();
                return StageOutcome.Continue;
            }
            finally
            {
                active.AddOrUpdate(item.Key, 0, (_, n) => n - 1);
            }
        }

        var stages = StageNames.Select(n => new DelegateStage<Spec>(n, (i, ct) => Check(n, i, ct), (i, ct) => Check(n, i, ct)));
        var sink = new RecordingSink<Spec>();
        await using var pipeline = TestPipelines.Build(stages, sink, TestPipelines.Options(StageNames, parallelism: 4, capacity: 8));

        // Four producers, each owning a quarter of the pods, interleave their pods' scripts at random.
        var producers = Enumerable.Range(0, 4).Select(producer => Task.Run(async () =>
        {
            var rng = new Random(seed * 100 + producer);
            var mine = scripts.Where(s => s.Pod % 4 == producer).Select(s => new Queue<(EventKind Kind, int Version)>(s.Events)).ToList();
            var owners = scripts.Where(s => s.Pod % 4 == producer).Select(s => s.Pod).ToList();
            while (mine.Any(q => q.Count > 0))
            {
                var pick = rng.Next(mine.Count);
                if (mine[pick].Count == 0)
                {
                    continue;
                }

                var (kind, version) = mine[pick].Dequeue();
                var key = $"pod-{owners[pick]}";
                var spec = new Spec(owners[pick], version);
                await pipeline.SubmitAsync(kind == EventKind.Upsert ? PipelineEvent<Spec>.Upsert(key, spec) : PipelineEvent<Spec>.Delete(key, spec), TestContext.CancellationToken);
                if (rng.Next(3) == 0)
                {
                    await Task.Yield();
                }
            }
        }, TestContext.CancellationToken)).ToArray();

        await Task.WhenAll(producers);
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        Assert.IsEmpty(violations, string.Join(Environment.NewLine, violations.Take(10)));
        foreach (var script in scripts)
        {
            CheckAgainstScript(script, sink.For($"pod-{script.Pod}"));
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Updates_arriving_while_a_pod_is_in_flight_run_once_with_the_latest_spec()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new ConcurrentQueue<int>();
        var stage = new DelegateStage<Spec>("Run", async (item, ct) =>
        {
            seen.Enqueue(item.Value!.Version);
            if (item.Value.Version == 1)
            {
                entered.SetResult();
                await release.Task.WaitAsync(ct);
            }

            return StageOutcome.Continue;
        });
        var sink = new RecordingSink<Spec>();
        await using var pipeline = TestPipelines.Build([stage], sink, TestPipelines.Options(["Run"]));

        await pipeline.SubmitAsync(PipelineEvent<Spec>.Upsert("p", new Spec(0, 1)), TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        for (var v = 2; v <= 5; v++)
        {
            await pipeline.SubmitAsync(PipelineEvent<Spec>.Upsert("p", new Spec(0, v)), TestContext.CancellationToken);
        }

        release.SetResult();
        await pipeline.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { 1, 5 }, seen.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 5 }, sink.For("p").Select(r => r.Item.Value!.Version).ToArray());
    }

    private static void CheckAgainstScript(PodScript script, IReadOnlyList<WorkResult<Spec>> results)
    {
        var key = $"pod-{script.Pod}";
        Assert.IsNotEmpty(results, $"{key} produced no result");

        // Versions only grow, and each result carries an event of its own kind from the script.
        for (var i = 1; i < results.Count; i++)
        {
            Assert.IsTrue(results[i].Item.Value!.Version > results[i - 1].Item.Value!.Version, $"{key}: results out of order");
        }

        foreach (var result in results)
        {
            Assert.IsTrue(script.Events.Contains((result.Kind, result.Item.Value!.Version)), $"{key}: result {result.Kind} v{result.Item.Value.Version} matches no event");
        }

        // The final state is the last event: coalescing keeps the latest spec.
        var last = script.Events[^1];
        var final = results[^1];
        Assert.AreEqual(last.Kind, final.Kind, $"{key}: final kind");
        Assert.AreEqual(WorkStatus.Succeeded, final.Status, $"{key}: final status");
        if (last.Kind == EventKind.Upsert)
        {
            Assert.AreEqual(last.Version, final.Item.Value!.Version, $"{key}: final version");
        }

        // A deletion is never coalesced away: every deletion is matched by a deletion result at or after it.
        foreach (var deletion in script.Events.Where(e => e.Kind == EventKind.Delete))
        {
            Assert.IsTrue(
                results.Any(r => r.Kind == EventKind.Delete && r.Item.Value!.Version >= deletion.Version),
                $"{key}: deletion v{deletion.Version} was lost; script {string.Join(",", script.Events)}; results {string.Join(",", results.Select(r => $"{r.Kind}{r.Item.Value!.Version}{r.Status}"))}");
        }

        // Only deletions cancel work, and only upserts are cancelled.
        Assert.IsTrue(results.Where(r => r.Status == WorkStatus.Cancelled).All(r => r.Kind == EventKind.Upsert), $"{key}: a deletion was cancelled");
        Assert.IsTrue(results.Count <= script.Events.Count, $"{key}: more results than events");
    }

    private sealed record PodScript(int Pod, IReadOnlyList<(EventKind Kind, int Version)> Events);

    // Upserts with growing versions; about half the pods are deleted; some come back and some go again.
    private static PodScript Script(int pod, Random random)
    {
        var events = new List<(EventKind, int)>();
        var version = 0;
        void Upserts()
        {
            for (var i = random.Next(1, 8); i > 0; i--)
            {
                events.Add((EventKind.Upsert, ++version));
            }
        }

        Upserts();
        if (random.Next(2) == 0)
        {
            events.Add((EventKind.Delete, ++version));
            if (random.Next(3) == 0)
            {
                Upserts();
                if (random.Next(2) == 0)
                {
                    events.Add((EventKind.Delete, ++version));
                }
            }
        }

        return new PodScript(pod, events);
    }
}
