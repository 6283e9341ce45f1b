using k8s.Models;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.Admission;

/// <summary>
/// Pods with names the API server would refuse, through the real admission, compile and run stages
/// beside a valid pod: each is refused with the API server's wording, nothing is written outside the
/// data directory, and the valid pod runs as if they were not there.
/// </summary>
[TestClass]
public sealed class InvalidNamesTests
{
    public TestContext TestContext { get; set; } = null!;

    private static V1Pod Pod(string name, string uid, params string[] containers) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = uid, ResourceVersion = "1" },
        Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [.. containers.Select(c => new V1Container { Name = c, Image = "hello" })] },
    };

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Pods_with_escaping_or_duplicate_names_are_refused_and_the_valid_pod_runs()
    {
        var ct = TestContext.CancellationToken;
        var root = Directory.CreateTempSubdirectory("krustlet-names-").FullName;
        var outside = Directory.CreateTempSubdirectory("krustlet-names-outside-").FullName;
        var escape = $"../../../..{outside}";
        var node = new NodeAllocatable("wasm-node", 110, new ResourceQuantity("2"), new ResourceQuantity("1Gi"));
        var bad = new[]
        {
            Pod($"{escape}/escaped", "uid-escaped-pod", "main"),
            Pod("escaping-container", "uid-escaped-container", $"{escape}/escapedc"),
            Pod("a/b", "uid-nested", "main"),
            Pod("twins", "uid-twins", "main", "main"),
            Pod("UPPER_case", "uid-upper", "main"),
            Pod("crowd", "uid-crowd", [.. Enumerable.Range(0, 10_000).Select(i => $"c{i}")]),
            Pod("bad-uid", "../uid", "main"),
        };
        var good = Pod("hello", "uid-hello", "main");

        await using (var harness = new RunHarness(new Dictionary<string, string> { ["hello"] = WasmFixtures.C("hello") }, root: root, saveState: true, admission: new AdmissionStage(node)))
        {
            foreach (var pod in bad.Append(good))
            {
                await harness.SubmitAsync(pod, ct);
            }

            foreach (var pod in bad)
            {
                var refused = await harness.Writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Failed, ct);
                Assert.AreEqual(KubeletReasons.Invalid, refused.Reason, pod.Metadata.Name);
                Assert.AreEqual($"Admission: {PodValidation.Validate(pod)}", refused.Message);
                StringAssert.StartsWith(refused.Message, $"Admission: Pod \"{pod.Metadata.Name}\" is invalid: ");
            }

            var hello = await harness.WaitForAsync(good, s => s.Phase == PodPhase.Succeeded, ct);
            Assert.AreEqual("Completed", ((TerminatedState)hello.Runtime!.Containers[0].State).Reason);
        }

        Assert.IsEmpty(Directory.GetFileSystemEntries(outside), "nothing was written outside the data directory");
        var logs = Directory.GetDirectories(Path.Combine(root, "logs")).Select(Path.GetFileName).ToArray();
        CollectionAssert.AreEqual(new[] { "default_hello_uid-hello" }, logs, "only the valid pod has a log directory");
        Directory.Delete(root, recursive: true);
        Directory.Delete(outside, recursive: true);
    }
}
