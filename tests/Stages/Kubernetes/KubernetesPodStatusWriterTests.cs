using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Kubernetes;

[TestClass]
public sealed class KubernetesPodStatusWriterTests : EmulatorTest
{
    private static readonly DateTimeOffset Started = new(2026, 11, 26, 10, 0, 0, TimeSpan.Zero);

    [TestInitialize]
    public void Seed()
    {
        Api.Put("pods", JsonNode.Parse(KubernetesJson.Serialize(new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop" },
            Spec = new V1PodSpec { NodeName = "wasm-node", Containers = [new V1Container { Name = "main", Image = "r/web:1" }] },
        }))!.AsObject());
    }

    private static PodReport Running(DateTimeOffset at) => new(
        "uid", "shop", "web", PodReportKind.Updated, PodReportOrigin.Runtime, null, null, "1", at,
        new PodRuntimeStatus(
            PodPhase.Running,
            null,
            null,
            Started,
            [],
            [new ContainerStatusSnapshot("main", new RunningState(Started.AddSeconds(1)), new TerminatedState(1, "Error", null, Started, Started.AddMilliseconds(500), "wasm://uid/main/0"), 1, "r/web:1", "sha256:abc", "wasm://uid/main/1")]) { QosClass = "Burstable" });

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_status_a_kubelet_would_write_lands_in_pods_status()
    {
        var writer = new KubernetesPodStatusWriter(Client, "10.0.0.5");

        await writer.WriteAsync(Running(Started.AddSeconds(2)), TestContext.CancellationToken);

        var pod = KubernetesJson.Deserialize<V1Pod>(Api.Get("pods", "shop", "web")!.ToJsonString());
        Assert.AreEqual("Running", pod.Status.Phase);
        Assert.AreEqual("Burstable", pod.Status.QosClass);
        Assert.AreEqual("10.0.0.5", pod.Status.PodIP);
        Assert.AreEqual("10.0.0.5", pod.Status.HostIP);
        Assert.AreEqual(Started.UtcDateTime, pod.Status.StartTime);
        CollectionAssert.AreEqual(new[] { "PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready" }, pod.Status.Conditions.Select(c => c.Type).ToArray());
        Assert.IsTrue(pod.Status.Conditions.All(c => c.Status == "True"));
        var main = pod.Status.ContainerStatuses.Single();
        Assert.AreEqual(Started.AddSeconds(1).UtcDateTime, main.State.Running.StartedAt);
        Assert.AreEqual(1, main.LastState.Terminated.ExitCode);
        Assert.AreEqual("Error", main.LastState.Terminated.Reason);
        Assert.AreEqual(1, main.RestartCount);
        Assert.AreEqual("sha256:abc", main.ImageID);
        Assert.AreEqual("wasm://uid/main/1", main.ContainerID);
        Assert.IsTrue(main.Ready);
        Assert.IsTrue(main.Started);
        Assert.IsTrue(Api.Requests.Contains("PATCH /api/v1/namespaces/shop/pods/web/status"));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Server_errors_conflicts_and_429_are_retried_with_backoff_until_the_status_lands()
    {
        var time = new SignallingTimeProvider();
        var writer = new KubernetesPodStatusWriter(Client, "10.0.0.5", time);
        Api.Fail("PATCH", "/status", 500);
        Api.Fail("PATCH", "/status", 409);
        Api.Fail("PATCH", "/status", 429);
        Api.Latency = TimeSpan.FromMilliseconds(5);

        var firstWait = time.NextTimer;
        var writing = writer.WriteAsync(Running(Started), TestContext.CancellationToken).AsTask();
        await firstWait.WaitAsync(TestContext.CancellationToken);
        var secondWait = time.NextTimer;
        time.Advance(TimeSpan.FromMilliseconds(100));
        await secondWait.WaitAsync(TestContext.CancellationToken);
        var thirdWait = time.NextTimer;
        time.Advance(TimeSpan.FromMilliseconds(200));
        await thirdWait.WaitAsync(TestContext.CancellationToken);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.IsFalse(writing.IsCompleted, "429 asked to retry after 1 s");
        time.Advance(TimeSpan.FromMilliseconds(1));
        await writing;

        Assert.AreEqual(4, Api.Requests.Count(r => r == "PATCH /api/v1/namespaces/shop/pods/web/status"));
        Assert.AreEqual("Running", Api.Get("pods", "shop", "web")!["status"]!["phase"]!.GetValue<string>());
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task The_final_report_of_a_pod_being_deleted_removes_it_with_grace_zero()
    {
        using (var response = await Client.CoreV1.DeleteNamespacedPodWithHttpMessagesAsync("web", "shop", gracePeriodSeconds: 30, cancellationToken: TestContext.CancellationToken))
        {
            Assert.IsNotNull(response.Body);
        }

        Assert.IsNotNull(Api.Get("pods", "shop", "web")!["metadata"]!["deletionTimestamp"], "a graceful delete leaves the pod for the kubelet");
        var writer = new KubernetesPodStatusWriter(Client, "10.0.0.5");

        var terminated = Running(Started).Runtime! with
        {
            Phase = PodPhase.Failed,
            Containers = [new ContainerStatusSnapshot("main", new TerminatedState(137, "Error", "killed: the pod is being deleted", Started, Started.AddSeconds(5), "wasm://uid/main/1"), null, 1, "r/web:1", "sha256:abc", "wasm://uid/main/1")],
        };
        await writer.WriteAsync(new PodReport("uid", "shop", "web", PodReportKind.Deleted, PodReportOrigin.Pipeline, null, null, "2", Started, terminated), TestContext.CancellationToken);
        await writer.WriteAsync(new PodReport("uid", "shop", "web", PodReportKind.Deleted, PodReportOrigin.Pipeline, null, null, "2", Started), TestContext.CancellationToken);

        Assert.IsNull(Api.Get("pods", "shop", "web"));
        var patch = Api.Requests.FindIndex(r => r == "PATCH /api/v1/namespaces/shop/pods/web/status");
        var delete = Api.Requests.FindIndex(r => r.StartsWith("DELETE /api/v1/namespaces/shop/pods/web?", StringComparison.Ordinal) && r.Contains("gracePeriodSeconds=0", StringComparison.Ordinal));
        Assert.IsTrue(patch >= 0 && delete > patch, "the final status is written, then the pod is deleted");
    }

    [TestMethod]
    [DataRow(null, null, "BestEffort")]
    [DataRow("100m/64Mi", "100m/64Mi", "Guaranteed")]
    [DataRow(null, "100m/64Mi", "Guaranteed")]
    [DataRow("50m/64Mi", "100m/64Mi", "Burstable")]
    [DataRow("50m/-", null, "Burstable")]
    public void The_QoS_class_follows_Kubernetes(string? requests, string? limits, string expected)
    {
        static Dictionary<string, ResourceQuantity>? Parse(string? text)
        {
            if (text is null)
            {
                return null;
            }

            var parts = text.Split('/');
            var table = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(parts[0]) };
            if (parts[1] != "-")
            {
                table["memory"] = new ResourceQuantity(parts[1]);
            }

            return table;
        }

        var pod = new V1Pod { Spec = new V1PodSpec { Containers = [new V1Container { Name = "c", Resources = new V1ResourceRequirements { Requests = Parse(requests), Limits = Parse(limits) } }] } };

        Assert.AreEqual(expected, PodRuntimeStatus.QosClassOf(pod));
    }
}
