using k8s.Models;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Stages.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): pod watch events a stream can carry that are not a pod
/// the node can take, decoded by the real <see cref="PodWatchDecoder"/> in a recorded stream. Each is
/// reported with its line and exact reason and skipped; the good pods around them still play.
/// </summary>
[TestClass]
public sealed class BadWatchEventCorpusTests
{
    private const string Good = """{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"good","namespace":"default","uid":"uid-good","resourceVersion":"1"},"spec":{"containers":[{"name":"main","image":"hello"}]}}}""";

    /// <summary>A line of the stream and what is reported for it.</summary>
    private static readonly (string Line, string Problem)[] Cases =
    [
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","uid":"u1"}}}""", "object is a ConfigMap, not a Pod"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nouid"},"spec":{"containers":[]}}}""", "ADDED pod default/nouid has no metadata.uid"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"uid":"u2"},"spec":{"containers":[]}}}""", "ADDED pod with uid u2 has no metadata.name"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"s","uid":"u3"},"spec":{"containers":"hello"}}}""", "object is not a valid Pod: spec.containers: expected a list"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","uid":"u4"},"spec":{"containers":[{"name":"a","image":"x","ports":[{"containerPort":"eighty"}]}]}}}""", "object is not a valid Pod: spec.containers[0].ports[0].containerPort: expected a whole number"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q","uid":"u5"},"spec":{"containers":[{"name":"a","image":"x","resources":{"limits":{"memory":"lots"}}}]}}}""", "object is not a valid Pod: \"lots\" is not a quantity (such as 128Mi, 500m or 2; the API server's pattern is '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$')"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"t","uid":"u6","creationTimestamp":"yesterday"},"spec":{"containers":[]}}}""", "object is not a valid Pod: \"yesterday\" is not a time (RFC 3339, such as 2026-01-02T15:04:05Z)"),
        ("""{"type":"ADDED","object":[1,2,3]}""", "ADDED event's \"object\" must be a JSON object (got array)"),
        ("""{"type":"ADDED","object":"pod"}""", "ADDED event's \"object\" must be a JSON object (got string)"),
        ("""{"type":"ADDED"}""", "ADDED event has no \"object\""),
        ("""{"type":"RENAMED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","uid":"u7"},"spec":{"containers":[]}}}""", "unknown event type \"RENAMED\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)"),
        ("""{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}""", "ERROR event: too old resource version: 1 (2)"),
        ("""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d","uid":"u8"},"spec":{"containers":[]}}""", "not valid JSON: column 118: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed."),
        ("""not json at all""", "not valid JSON: column 2: 'not json at all' is an invalid JSON literal. Expected the literal 'null'."),
        ("""{"type":7,"object":{}}""", "missing string property \"type\""),
    ];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Every_bad_event_is_reported_with_its_line_and_reason_and_the_good_pods_play()
    {
        var lines = new List<string> { Good };
        lines.AddRange(Cases.Select(c => c.Line));
        lines.Add(Good.Replace("good", "after", StringComparison.Ordinal));
        var source = new WatchStreamReplaySource<V1Pod>(() => new StringReader(string.Join('\n', lines)), "corpus", PodWatchDecoder.Instance, ReplayPace.AsFastAsPossible);

        var events = await source.ReadAsync(TestContext.CancellationToken).ToListAsync(TestContext.CancellationToken);

        var expected = Cases.Select((c, i) => $"line {i + 2}: {c.Problem}").ToArray();
        CollectionAssert.AreEqual(expected, source.Problems.Select(p => p.ToString()).ToArray(), string.Join("\n", source.Problems));
        Assert.IsFalse(source.Problems.Any(p => p.Message.Contains("System.", StringComparison.Ordinal) || p.Message.Contains("Exception", StringComparison.Ordinal) || p.Message.Contains("LineNumber", StringComparison.Ordinal)));
        CollectionAssert.AreEqual(new[] { "uid-good", "uid-after" }, events.Select(e => e.Key).ToArray());
    }
}
