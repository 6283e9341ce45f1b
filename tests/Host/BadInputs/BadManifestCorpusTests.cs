using k8s.Models;
using Krustlet.Host.Standalone;
using Krustlet.Host.Tests.Support;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): static pod manifests a user can get wrong, all in one
/// manifest directory beside a good pod. Each fails alone with the exact reason a user can act on (a
/// file the source cannot take is listed with what is wrong; a pod it can take but the node must refuse
/// ends with the kubelet's reason and message), no message carries an exception's text, and the good
/// pod runs to Succeeded.
/// </summary>
[TestClass]
public sealed class BadManifestCorpusTests
{
    private const string Node = "corpus";

    /// <summary>Files the static pod source cannot take: file name, content, what it lists for the file.</summary>
    private static readonly (string File, string Content, string Problem)[] Unreadable =
    [
        ("indent.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   extra: indent\n", "line 5, column 9: While scanning a plain scalar value, found invalid mapping."),
        ("tab.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n", "line 1, column 1: While scanning a mapping, found invalid tab as indentation."),
        ("bomb.yaml", Bomb(), "line 1: the document contains excessive aliasing: its aliases expand it to 123456818 nodes, it spells out 38"),
        ("banana.yaml", "apiVersion: v1\nkind: Banana\nmetadata:\n  name: b\n", "Banana (v1) is not a kind a static pod manifest holds: one v1 Pod, with v1 ConfigMaps and Secrets it uses"),
        ("no-api-version.yaml", "kind: Pod\nmetadata:\n  name: a\nspec:\n  containers: [{name: a, image: x}]\n", "apiVersion is not set (line 1)"),
        ("no-kind.yaml", "apiVersion: v1\nmetadata:\n  name: a\n", "kind is not set (line 1)"),
        ("scalar.yaml", "just some words\n", "not an object (a manifest is a mapping with apiVersion, kind, metadata)"),
        ("list.yaml", "- apiVersion: v1\n- kind: Pod\n", "not an object (a manifest is a mapping with apiVersion, kind, metadata)"),
        ("two-pods.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: one}\nspec: {containers: [{name: a, image: x}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: two}\nspec: {containers: [{name: a, image: x}]}\n", "document 2: a second Pod (two); a file holds one Pod"),
        ("no-containers.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec: {}\n", "Pod empty has no containers (spec.containers)"),
        ("no-image.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: noimage}\nspec: {containers: [{name: main}]}\n", "Pod noimage: container \"main\" needs a name and an image"),
        ("no-name.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: a, image: x}]}\n", "the Pod has no metadata.name"),
        ("configmap-no-name.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\ndata: {a: b}\n", "a ConfigMap without metadata.name"),
        ("truncated.json", "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": ", "line 2, column 1: While parsing a node, did not find expected node content."),
        ("containers-string.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: s}\nspec: {containers: hello}\n", "line 4, column 20: spec.containers: expected a list, found \"hello\""),
        ("port-string.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x, ports: [{containerPort: eighty}]}]}\n", "line 4, column 65: spec.containers[0].ports[0].containerPort: expected a number, found \"eighty\""),
        ("empty.yaml", string.Empty, "holds no Pod, ConfigMap or Secret"),
        ("comments.yaml", "# nothing but a comment\n", "holds no Pod, ConfigMap or Secret"),
        ("nesting.yaml", new string('[', 5000) + new string(']', 5000) + "\n", "not an object (a manifest is a mapping with apiVersion, kind, metadata)"),
        ("bad-quantity.yaml", Pod("quantity", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, resources: {limits: {memory: lots}}}]"), "line 7, column 97: spec.containers[0].resources.limits.memory: expected a quantity (such as 128Mi, 500m or 2; the API server's pattern is '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'), found \"lots\""),
        ("binary.yaml", "\u0000\u0001\u0002garbage\u00ff", "not an object (a manifest is a mapping with apiVersion, kind, metadata)"),
    ];

    /// <summary>Pods the source takes and the node refuses: file name, content, the pod's reason and message.</summary>
    private static readonly (string File, string Content, string Reason, string Message)[] Refused =
    [
        ("upper.yaml", Pod("UPPER_case", "containers: [{name: main, image: examples.krustlet.dev/hello:v1}]"), "Invalid", "Admission: Pod \"UPPER_case-corpus\" is invalid: metadata.name: Invalid value: \"UPPER_case-corpus\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        ("duplicate.yaml", Pod("dup", "containers: [{name: main, image: examples.krustlet.dev/hello:v1}, {name: main, image: examples.krustlet.dev/hello:v1}]"), "Invalid", "Admission: Pod \"dup-corpus\" is invalid: spec.containers[1].name: Duplicate value: \"main\""),
        ("dotdot.yaml", Pod("dotdot", "containers: [{name: ../../x, image: examples.krustlet.dev/hello:v1}]"), "Invalid", "Admission: Pod \"dotdot-corpus\" is invalid: spec.containers[0].name: Invalid value: \"../../x\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
        ("host-network.yaml", Pod("hostnet", "hostNetwork: true\n  containers: [{name: main, image: examples.krustlet.dev/hello:v1}]"), "UnsupportedPodSpec", "Admission: spec.hostNetwork: a WebAssembly sandbox cannot join the host network"),
        ("privileged.yaml", Pod("priv", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, securityContext: {privileged: true}}]"), "UnsupportedPodSpec", "Admission: spec.containers[main].securityContext.privileged: a WebAssembly sandbox cannot be privileged"),
        ("exec-probe.yaml", Pod("probe", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, livenessProbe: {exec: {command: [ls]}}}]"), "UnsupportedPodSpec", "Admission: spec.containers[main].livenessProbe.exec: a WebAssembly container has no shell or processes to exec a probe command; use httpGet or tcpSocket"),
        ("host-port.yaml", Pod("hostport", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, ports: [{containerPort: 80, hostPort: 80}]}]"), "UnsupportedPodSpec", "Admission: spec.containers[main].ports[80].hostPort: a WebAssembly sandbox cannot bind host ports"),
        ("cpu.yaml", Pod("cpu", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, resources: {requests: {cpu: '1000'}}}]"), "OutOfcpu", "Admission: Node didn't have enough resource: cpu, requested: 1000000m, used: 0m, capacity: 4000m"),
        ("memory.yaml", Pod("memory", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, resources: {requests: {memory: 1Ti}}}]"), "OutOfmemory", "Admission: Node didn't have enough resource: memory, requested: 1099511627776, used: 0, capacity: 4294967296"),
        ("bad-image.yaml", Pod("badimage", "containers: [{name: main, image: 'UPPER::bad'}]"), "InvalidImageName", "ImagePull: container main: Failed to apply default image tag \"UPPER::bad\": couldn't parse image name \"UPPER::bad\": invalid reference format: \"UPPER::bad\": a repository name must be lowercase letters, digits and separators"),
        ("never-pull.yaml", Pod("never", "containers: [{name: main, image: examples.krustlet.dev/absent:v1, imagePullPolicy: Never}]"), "ErrImageNeverPull", "ImagePull: container main: Container image \"examples.krustlet.dev/absent:v1\" is not present with pull policy of Never"),
        ("restart-policy.yaml", Pod("sometimes", "containers: [{name: main, image: examples.krustlet.dev/hello:v1}]", "Sometimes"), "Invalid", "Admission: Pod \"sometimes-corpus\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""),
        ("pull-policy.yaml", Pod("pullpolicy", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, imagePullPolicy: Sometimes}]"), "Invalid", "Admission: Pod \"pullpolicy-corpus\" is invalid: spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""),
        ("missing-volume.yaml", Pod("novolume", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, volumeMounts: [{name: data, mountPath: /data}]}]"), "CreateContainerConfigError", "VolumeSetup: container main: volumeMount data: the pod has no volume named \"data\""),
        ("missing-configmap.yaml", Pod("nocm", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, volumeMounts: [{name: cfg, mountPath: /cfg}]}]\n  volumes: [{name: cfg, configMap: {name: absent}}]"), "CreateContainerConfigError", "VolumeSetup: configmap \"absent\" not found"),
        ("missing-secret-key.yaml", Pod("nokey", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, env: [{name: K, valueFrom: {secretKeyRef: {name: absent, key: k}}}]}]"), "CreateContainerConfigError", "VolumeSetup: secret \"absent\" not found"),
    ];

    private string _root = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Setup() => _root = Directory.CreateTempSubdirectory("krustlet-corpus-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Every_bad_manifest_fails_alone_with_a_reason_a_user_can_act_on_and_a_good_pod_runs()
    {
        var ct = TestContext.CancellationToken;
        var manifests = Directory.CreateDirectory(Path.Combine(_root, "manifests")).FullName;
        foreach (var (file, content, _) in Unreadable)
        {
            await File.WriteAllTextAsync(Path.Combine(manifests, file), content, ct);
        }

        foreach (var (file, content, _, _) in Refused)
        {
            await File.WriteAllTextAsync(Path.Combine(manifests, file), content, ct);
        }

        await File.WriteAllTextAsync(Path.Combine(manifests, "good.yaml"), Pod("good", "containers: [{name: main, image: examples.krustlet.dev/hello:v1, imagePullPolicy: IfNotPresent}]"), ct);

        var source = new StaticPodSource(manifests, Node) { WatchFiles = false };
        await using var stages = await ExampleStages.StartAsync(_root, Node, source.Resources, 8, ct);
        var (pipeline, writer) = (stages.Pipeline, stages.Writer);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var scanned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Scanned += (_, _) => scanned.TrySetResult();
        var pods = new Dictionary<string, V1Pod>(StringComparer.Ordinal);
        var feeding = Task.Run(
            async () =>
            {
                await foreach (var evt in source.ReadAsync(stop.Token))
                {
                    pods[evt.Value!.Metadata.Name] = evt.Value;
                    await pipeline.Graph.SubmitAsync(evt, ct);
                }
            },
            ct);
        await scanned.Task.WaitAsync(ct);

        var problems = source.Problems;
        var wrong = new List<string>();
        var messages = new List<string>();
        foreach (var (file, _, expected) in Unreadable)
        {
            var problem = problems.GetValueOrDefault(file);
            messages.Add(problem ?? string.Empty);
            if (problem != expected)
            {
                wrong.Add($"{file}: expected \"{expected}\", got \"{problem ?? "(taken as a pod)"}\"");
            }
        }

        foreach (var (file, _, reason, message) in Refused)
        {
            if (!pods.TryGetValue($"{PodName(file, manifests)}-{Node}", out var pod))
            {
                wrong.Add($"{file}: not taken: {problems.GetValueOrDefault(file)}");
                continue;
            }

            // The pod's first report that is not progress: the refusal, or its end.
            var report = await writer.WaitForAsync(pod.Metadata.Uid, r => r.Kind == PodReportKind.Failed || r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, ct);
            messages.Add(report.Message ?? string.Empty);
            if (report.Kind != PodReportKind.Failed || report.Reason != reason || report.Message != message)
            {
                wrong.Add($"{file}: expected {reason} \"{message}\", got {report.Kind} {report.Reason} \"{report.Message}\"");
            }

            // Where the pod has container statuses, they say the same (a kubelet's container waits with the pod's reason).
            foreach (var state in report.Runtime?.Containers.Select(c => c.State).OfType<WaitingState>() ?? [])
            {
                if (state.Reason != reason || state.Message != message)
                {
                    wrong.Add($"{file}: container waiting {state.Reason} \"{state.Message}\" contradicts the pod's {reason}");
                }
            }
        }

        var good = await writer.WaitForAsync(pods[$"good-{Node}"].Metadata.Uid, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed || r.Kind == PodReportKind.Failed, ct);
        Assert.AreEqual(PodPhase.Succeeded, good.Runtime?.Phase, good.Message);
        Assert.IsEmpty(wrong, string.Join("\n", wrong));
        Assert.AreEqual(Unreadable.Length, problems.Count, string.Join("\n", problems));
        BadInputMessages.AssertNoneLeaksAnException(messages);
        Assert.IsGreaterThanOrEqualTo(30, Unreadable.Length + Refused.Length);
        await stop.CancelAsync();
        await Assert.ThrowsAsync<OperationCanceledException>(() => feeding);
    }

    private static string PodName(string file, string manifests) =>
        File.ReadAllLines(Path.Combine(manifests, file)).First(l => l.StartsWith("  name: ", StringComparison.Ordinal))["  name: ".Length..];

    private static string Pod(string name, string spec, string restartPolicy = "Never") => $"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restartPolicy}\n  {spec}\n";

    /// <summary>A billion-laughs file: nine levels of aliases, each ten of the one below.</summary>
    private static string Bomb()
    {
        var lines = new List<string> { "apiVersion: v1", "kind: Pod", "metadata:", "  name: bomb", "  labels:", "    a: &a lol" };
        for (var level = 1; level < 9; level++)
        {
            lines.Add($"    {(char)('a' + level)}: &{(char)('a' + level)} [{string.Join(", ", Enumerable.Repeat($"*{(char)('a' + level - 1)}", 10))}]");
        }

        return string.Join('\n', lines) + "\nspec:\n  containers: [{name: a, image: x}]\n";
    }
}
