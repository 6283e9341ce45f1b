using System.Collections.Concurrent;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Queues;

namespace Krustlet.Pipeline.Tests.Queues;

[TestClass]
public sealed class KeyedWorkQueueTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_key_is_handled_one_value_at_a_time_and_a_burst_coalesces_to_the_latest()
    {
        var handled = new ConcurrentQueue<(string Key, int Value)>();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bHandled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var queue = new KeyedWorkQueue<int>("Status", new StageOptions(4, 16), async (key, value, ct) =>
        {
            if (key == "a" && value == 1)
            {
                entered.SetResult();
                await release.Task.WaitAsync(ct);
            }

            handled.Enqueue((key, value));
            if (key == "b")
            {
                bHandled.SetResult();
            }
        });

        await queue.EnqueueAsync("a", 1, TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        for (var v = 2; v <= 5; v++)
        {
            await queue.EnqueueAsync("a", v, TestContext.CancellationToken);
        }

        Assert.AreEqual(1, queue.Waiting, "a's burst waits as one entry");
        await queue.EnqueueAsync("b", 1, TestContext.CancellationToken);
        await bHandled.Task.WaitAsync(TestContext.CancellationToken); // another key is not held back by a
        release.SetResult();
        await queue.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { 1, 5 }, handled.Where(h => h.Key == "a").Select(h => h.Value).ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_full_queue_makes_new_keys_wait_but_merges_into_waiting_ones()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = new ConcurrentQueue<(string Key, int Value)>();
        await using var queue = new KeyedWorkQueue<int>("Status", new StageOptions(1, 1), async (key, value, ct) =>
        {
            entered.TrySetResult();
            await release.Task.WaitAsync(ct);
            handled.Enqueue((key, value));
        });

        await queue.EnqueueAsync("a", 1, TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        await queue.EnqueueAsync("b", 1, TestContext.CancellationToken);

        var c = queue.EnqueueAsync("c", 1, TestContext.CancellationToken).AsTask();
        Assert.IsFalse(c.IsCompleted, "no room for a third key while one runs and one waits");
        await queue.EnqueueAsync("b", 2, TestContext.CancellationToken); // merges: needs no room

        release.SetResult();
        await c;
        await queue.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { ("a", 1), ("b", 2), ("c", 1) }, handled.ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_merge_function_decides_what_a_burst_keeps()
    {
        var handled = new ConcurrentQueue<int>();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var queue = new KeyedWorkQueue<int>(
            "Sum",
            new StageOptions(1, 4),
            async (_, value, ct) =>
            {
                entered.TrySetResult();
                await release.Task.WaitAsync(ct);
                handled.Enqueue(value);
            },
            merge: (waiting, newer) => waiting + newer);

        await queue.EnqueueAsync("k", 1, TestContext.CancellationToken);
        await entered.Task.WaitAsync(TestContext.CancellationToken);
        await queue.EnqueueAsync("k", 2, TestContext.CancellationToken);
        await queue.EnqueueAsync("k", 3, TestContext.CancellationToken);
        release.SetResult();
        await queue.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEqual(new[] { 1, 5 }, handled.ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_throwing_handler_fails_one_value_and_the_queue_goes_on()
    {
        var handled = new ConcurrentQueue<string>();
        await using var queue = new KeyedWorkQueue<int>("Status", new StageOptions(2, 8), (key, _, _) =>
        {
            if (key == "bad")
            {
                throw new InvalidOperationException("boom");
            }

            handled.Enqueue(key);
            return ValueTask.CompletedTask;
        });

        await queue.EnqueueAsync("bad", 1, TestContext.CancellationToken);
        await queue.EnqueueAsync("good", 1, TestContext.CancellationToken);
        await queue.WaitForIdleAsync(TestContext.CancellationToken);
        await queue.EnqueueAsync("bad", 2, TestContext.CancellationToken);
        await queue.EnqueueAsync("later", 1, TestContext.CancellationToken);
        await queue.WaitForIdleAsync(TestContext.CancellationToken);

        CollectionAssert.AreEquivalent(new[] { "good", "later" }, handled.ToArray());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Stop_writes_what_is_waiting_then_refuses_more()
    {
        var handled = new ConcurrentQueue<string>();
        var queue = new KeyedWorkQueue<int>("Status", new StageOptions(1, 8), (key, _, _) =>
        {
            handled.Enqueue(key);
            return ValueTask.CompletedTask;
        });
        await queue.EnqueueAsync("a", 1, TestContext.CancellationToken);
        await queue.EnqueueAsync("b", 1, TestContext.CancellationToken);

        var left = await queue.StopAsync(TimeSpan.FromSeconds(30)).WaitAsync(TestContext.CancellationToken);

        Assert.IsEmpty(left);
        CollectionAssert.AreEquivalent(new[] { "a", "b" }, handled.ToArray());
        await Assert.ThrowsExactlyAsync<InvalidOperationException>(async () => await queue.EnqueueAsync("c", 1, TestContext.CancellationToken));
        await queue.DisposeAsync();
    }
}
