using System.Text.Json;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Replay;

namespace Krustlet.Pipeline.Tests.Replay;

[TestClass]
public sealed class WatchStreamReplaySourceTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>Objects are {"id": "...", "v": n}; an object without an id is refused.</summary>
    private sealed class ThingDecoder : IWatchEventDecoder<int>
    {
        public PipelineEvent<int>? Decode(string type, JsonElement obj, out string? error)
        {
            if (!obj.TryGetProperty("id", out var id))
            {
                error = "object has no id";
                return null;
            }

            error = null;
            var v = obj.TryGetProperty("v", out var value) ? value.GetInt32() : 0;
            return type == "DELETED" ? PipelineEvent<int>.Delete(id.GetString()!, v) : PipelineEvent<int>.Upsert(id.GetString()!, v);
        }
    }

    private static WatchStreamReplaySource<int> Source(string text, ReplayPace pace = ReplayPace.AsFastAsPossible, TimeProvider? time = null) =>
        new(() => new StringReader(text), "test", new ThingDecoder(), pace, time);

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Malformed_lines_are_reported_with_their_number_and_the_rest_still_plays()
    {
        var text = string.Join('\n',
            """{"type":"ADDED","object":{"id":"a","v":1}}""",
            """{"type":"ADDED","object":{"id":"b","v":1}""",
            "",
            """{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}""",
            """{"type":"MODIFIED","object":{"v":2}}""",
            """{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}""",
            """{"type":"RENAMED","object":{"id":"a"}}""",
            """["ADDED"]""",
            """{"object":{"id":"a"}}""",
            """{"type":"ADDED","object":{"id":"c"},"offsetSeconds":"soon"}""",
            """{"type":"DELETED","object":{"id":"a","v":3}}""");
        var source = Source(text);

        var events = await source.ReadAsync(TestContext.CancellationToken).ToListAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(
            new[] { ("a", EventKind.Upsert, 1), ("a", EventKind.Delete, 3) },
            events.Select(e => (e.Key, e.Kind, e.Value)).ToArray());
        CollectionAssert.AreEqual(new long[] { 2, 5, 6, 7, 8, 9, 10 }, source.Problems.Select(p => p.Line).ToArray());
        StringAssert.StartsWith(source.Problems[0].Message, "not valid JSON");
        Assert.AreEqual("object has no id", source.Problems[1].Message);
        Assert.AreEqual("ERROR event: too old resource version", source.Problems[2].Message);
        StringAssert.Contains(source.Problems[3].Message, "unknown event type \"RENAMED\"");
        Assert.AreEqual("missing string property \"type\"", source.Problems[5].Message);
        Assert.AreEqual("line 10: \"offsetSeconds\" must be a non-negative number of seconds", source.Problems[6].ToString());
        Assert.AreEqual(2, source.Played);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Recorded_pace_waits_for_each_offset_on_the_clock()
    {
        var time = new SignallingTimeProvider();
        var text = string.Join('\n',
            """{"type":"ADDED","object":{"id":"a"},"offsetSeconds":0}""",
            """{"type":"ADDED","object":{"id":"b"},"offsetSeconds":2.5}""",
            """{"type":"ADDED","object":{"id":"c"}}""",
            """{"type":"ADDED","object":{"id":"d"},"offsetSeconds":1}""");
        await using var events = Source(text, ReplayPace.Recorded, time).ReadAsync(TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);

        Assert.IsTrue(await events.MoveNextAsync());
        Assert.AreEqual("a", events.Current.Key);

        var timer = time.NextTimer;
        var next = events.MoveNextAsync().AsTask();
        await timer.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.IsFalse(next.IsCompleted, "b is recorded at 2.5 s");
        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.IsTrue(await next.WaitAsync(TestContext.CancellationToken));
        Assert.AreEqual("b", events.Current.Key);

        // No offset plays at once; an offset already passed plays at once.
        Assert.IsTrue(await events.MoveNextAsync());
        Assert.AreEqual("c", events.Current.Key);
        Assert.IsTrue(await events.MoveNextAsync());
        Assert.AreEqual("d", events.Current.Key);
        Assert.IsFalse(await events.MoveNextAsync());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task As_fast_as_possible_ignores_offsets()
    {
        var time = new SignallingTimeProvider();
        var text = """{"type":"ADDED","object":{"id":"a"},"offsetSeconds":3600}""";

        var events = await Source(text, ReplayPace.AsFastAsPossible, time).ReadAsync(TestContext.CancellationToken).ToListAsync(TestContext.CancellationToken);

        Assert.HasCount(1, events);
    }
}
