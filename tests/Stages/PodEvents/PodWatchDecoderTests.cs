using System.Text.Json;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Stages.Tests.PodEvents;

[TestClass]
public sealed class PodWatchDecoderTests
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    private const string Pod = """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop","uid":"u-1","resourceVersion":"7"},"spec":{"containers":[{"name":"main","image":"r/web:1"}]}}""";
    private const string Deleting = """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop","uid":"u-1","resourceVersion":"8","deletionTimestamp":"2026-11-20T10:05:00Z"},"spec":{"containers":[]}}""";

    [TestMethod]
    [DataRow("ADDED")]
    [DataRow("MODIFIED")]
    public void Added_and_modified_pods_are_upserts_keyed_by_uid(string type)
    {
        var evt = PodWatchDecoder.Instance.Decode(type, Json(Pod), out var error);

        Assert.IsNull(error);
        Assert.AreEqual(EventKind.Upsert, evt!.Kind);
        Assert.AreEqual("u-1", evt.Key);
        Assert.AreEqual("r/web:1", evt.Value!.Spec.Containers[0].Image);
    }

    [TestMethod]
    [DataRow("MODIFIED", Deleting)]
    [DataRow("DELETED", Pod)]
    public void A_deletion_timestamp_or_a_deleted_event_is_a_deletion(string type, string json)
    {
        var evt = PodWatchDecoder.Instance.Decode(type, Json(json), out _);

        Assert.AreEqual(EventKind.Delete, evt!.Kind);
        Assert.AreEqual("u-1", evt.Key);
        Assert.AreEqual("web", evt.Value!.Metadata.Name, "a deletion carries the pod as last seen");
    }

    [TestMethod]
    [DataRow("""{"kind":"Pod","metadata":{"name":"web","namespace":"shop"}}""", "ADDED pod shop/web has no metadata.uid")]
    [DataRow("""{"kind":"Pod","metadata":{"uid":"u-2"}}""", "ADDED pod with uid u-2 has no metadata.name")]
    [DataRow("""{"kind":"ConfigMap","metadata":{"name":"c","uid":"u-3"}}""", "object is a ConfigMap, not a Pod")]
    [DataRow("""{"kind":"Pod","metadata":{"name":"web","uid":"u-4"},"spec":{"containers":"none"}}""", "object is not a valid Pod: spec.containers: expected a list")]
    public void Objects_that_are_not_usable_pods_are_refused_with_a_reason(string json, string expected)
    {
        var evt = PodWatchDecoder.Instance.Decode("ADDED", Json(json), out var error);

        Assert.IsNull(evt);
        StringAssert.StartsWith(error, expected);
    }
}
