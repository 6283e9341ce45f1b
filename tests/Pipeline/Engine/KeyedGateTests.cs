using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;

namespace Krustlet.Pipeline.Tests.Engine;

[TestClass]
public sealed class KeyedGateTests
{
    private readonly KeyedGate<string> _gate = new(TimeProvider.System);

    [TestMethod]
    public void Idle_key_is_dispatched_at_once()
    {
        var (item, disposition) = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1"));

        Assert.AreEqual(AdmitDisposition.Dispatched, disposition);
        Assert.IsNotNull(item);
        Assert.AreEqual("v1", item.Value);
        Assert.AreEqual(0, item.Sequence);
        Assert.AreEqual(1, _gate.InFlightCount);
    }

    [TestMethod]
    public void Updates_while_in_flight_coalesce_to_the_latest()
    {
        var first = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;

        Assert.AreEqual(AdmitDisposition.Pending, _gate.Admit(PipelineEvent<string>.Upsert("a", "v2")).Disposition);
        Assert.AreEqual(AdmitDisposition.Coalesced, _gate.Admit(PipelineEvent<string>.Upsert("a", "v3")).Disposition);

        var next = _gate.Complete(first);
        Assert.IsNotNull(next);
        Assert.AreEqual("v3", next.Value);
        Assert.AreEqual(1, next.Sequence);
        Assert.IsTrue(next.Version > first.Version);
        Assert.IsNull(_gate.Complete(next));
        Assert.AreEqual(0, _gate.InFlightCount);
    }

    [TestMethod]
    public void Other_keys_are_not_held_back_by_an_in_flight_key()
    {
        _ = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1"));

        var (item, disposition) = _gate.Admit(PipelineEvent<string>.Upsert("b", "v1"));

        Assert.AreEqual(AdmitDisposition.Dispatched, disposition);
        Assert.AreEqual("b", item!.Key);
    }

    [TestMethod]
    public void Delete_cancels_in_flight_work_and_is_never_coalesced_away()
    {
        var first = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;
        _ = _gate.Admit(PipelineEvent<string>.Upsert("a", "v2"));

        _ = _gate.Admit(PipelineEvent<string>.Delete("a"));
        Assert.IsTrue(first.CancellationToken.IsCancellationRequested);

        // A later upsert (the key comes back) waits behind the deletion; it does not replace it.
        _ = _gate.Admit(PipelineEvent<string>.Upsert("a", "v3"));

        var deletion = _gate.Complete(first);
        Assert.AreEqual(EventKind.Delete, deletion!.Kind);
        Assert.AreEqual("v2", deletion.Value, "a deletion carries the latest known payload");
        Assert.IsFalse(deletion.CancellationToken.IsCancellationRequested);

        var comeBack = _gate.Complete(deletion);
        Assert.AreEqual(EventKind.Upsert, comeBack!.Kind);
        Assert.AreEqual("v3", comeBack.Value);
    }

    [TestMethod]
    public void A_deletion_in_flight_is_not_cancelled_by_another_and_the_other_still_runs()
    {
        var deletion = _gate.Admit(PipelineEvent<string>.Delete("a", "v1")).Dispatch!;

        Assert.AreEqual(AdmitDisposition.Pending, _gate.Admit(PipelineEvent<string>.Delete("a")).Disposition);
        Assert.AreEqual(AdmitDisposition.Coalesced, _gate.Admit(PipelineEvent<string>.Delete("a", "v2")).Disposition);
        Assert.IsFalse(deletion.CancellationToken.IsCancellationRequested);

        var second = _gate.Complete(deletion);
        Assert.AreEqual(EventKind.Delete, second!.Kind, "the later deletion still runs");
        Assert.AreEqual("v2", second.Value);
        Assert.IsNull(_gate.Complete(second));
        Assert.AreEqual(0, _gate.TrackedKeys, "a deleted key is forgotten");
    }

    [TestMethod]
    public void Reentry_runs_with_the_latest_payload_and_never_replaces_a_waiting_update()
    {
        var first = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;
        Assert.IsNull(_gate.Complete(first));

        var again = _gate.Admit(PipelineEvent<string>.Reenter("a", "backoff expired")).Dispatch!;
        Assert.AreEqual("v1", again.Value);
        Assert.AreEqual(EventOrigin.Reentry, again.Origin);
        Assert.AreEqual("backoff expired", again.Reason);

        _ = _gate.Admit(PipelineEvent<string>.Upsert("a", "v2"));
        Assert.AreEqual(AdmitDisposition.Dropped, _gate.Admit(PipelineEvent<string>.Reenter("a", "relist")).Disposition);

        var next = _gate.Complete(again);
        Assert.AreEqual("v2", next!.Value);
        Assert.AreEqual(EventOrigin.Source, next.Origin);
    }

    [TestMethod]
    public void Reentry_waiting_behind_in_flight_work_takes_the_newest_payload()
    {
        var first = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;
        Assert.AreEqual(AdmitDisposition.Pending, _gate.Admit(PipelineEvent<string>.Reenter("a", "retry")).Disposition);
        Assert.AreEqual(AdmitDisposition.Coalesced, _gate.Admit(PipelineEvent<string>.Upsert("a", "v2")).Disposition);

        Assert.AreEqual("v2", _gate.Complete(first)!.Value);
    }

    [TestMethod]
    public void Reentry_for_an_unknown_or_deleted_key_is_dropped()
    {
        Assert.AreEqual(AdmitDisposition.Dropped, _gate.Admit(PipelineEvent<string>.Reenter("nobody", "retry")).Disposition);

        var deletion = _gate.Admit(PipelineEvent<string>.Delete("a", "v1")).Dispatch!;
        Assert.AreEqual(AdmitDisposition.Dropped, _gate.Admit(PipelineEvent<string>.Reenter("a", "retry")).Disposition);
        Assert.IsNull(_gate.Complete(deletion));
    }

    [TestMethod]
    public void Close_reports_waiting_keys_and_stops_dispatching()
    {
        var a = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;
        _ = _gate.Admit(PipelineEvent<string>.Upsert("a", "v2"));
        _ = _gate.Admit(PipelineEvent<string>.Upsert("b", "v1"));

        var left = _gate.Close();

        CollectionAssert.AreEquivalent(new[] { "a" }, left.ToArray());
        Assert.IsNull(_gate.Complete(a), "nothing new starts once closed");
        Assert.AreEqual(AdmitDisposition.Dropped, _gate.Admit(PipelineEvent<string>.Upsert("c", "v1")).Disposition);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task WhenIdle_completes_when_the_last_item_completes()
    {
        Assert.IsTrue(_gate.WhenIdle().IsCompleted);
        var a = _gate.Admit(PipelineEvent<string>.Upsert("a", "v1")).Dispatch!;
        var idle = _gate.WhenIdle();
        Assert.IsFalse(idle.IsCompleted);

        Assert.IsNull(_gate.Complete(a));

        await idle;
    }
}
