using k8s.Models;
using Krustlet.Stages.Admission;

namespace Krustlet.Stages.Tests.Admission;

/// <summary>Names checked as the API server checks them, with its wording: every kind of name, the ways out of a directory, and the bounds.</summary>
[TestClass]
public sealed class PodValidationTests
{
    private const string Subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    private const string Label = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    private static V1Pod Pod(string name = "web", string? ns = "default", string uid = "0b6f3e2c-6d3c-4f7e-9a51-1f2d3c4b5a69", string[]? containers = null, string[]? inits = null, string[]? volumes = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Uid = uid },
        Spec = new V1PodSpec
        {
            InitContainers = inits?.Select(n => new V1Container { Name = n, Image = "x" }).ToList(),
            Containers = [.. (containers ?? ["main"]).Select(n => new V1Container { Name = n, Image = "x" })],
            Volumes = volumes?.Select(n => new V1Volume { Name = n, EmptyDir = new V1EmptyDirVolumeSource() }).ToList(),
        },
    };

    [TestMethod]
    public void A_valid_pod_passes() =>
        Assert.IsNull(PodValidation.Validate(Pod("web.frontend-1", inits: ["setup"], containers: ["main", "sidecar"], volumes: ["data", "config"])));

    [TestMethod]
    [DataRow("../../../../tmp/x/escaped")]
    [DataRow("a/b")]
    [DataRow("UPPER_case")]
    [DataRow("%2e%2e")]
    [DataRow("..")]
    [DataRow(".")]
    [DataRow("-leading")]
    [DataRow("trailing.")]
    public void A_pod_name_is_a_dns_subdomain(string name) =>
        Assert.AreEqual($"Pod \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": {Subdomain}", PodValidation.Validate(Pod(name)));

    [TestMethod]
    public void A_nul_or_a_newline_in_a_name_is_refused_and_shown_escaped()
    {
        Assert.AreEqual($"Pod \"a\\x00b\" is invalid: metadata.name: Invalid value: \"a\\x00b\": {Subdomain}", PodValidation.Validate(Pod("a\0b")));
        Assert.AreEqual($"Pod \"web\\n\" is invalid: metadata.name: Invalid value: \"web\\n\": {Subdomain}", PodValidation.Validate(Pod("web\n")), "a trailing newline is not a match");
    }

    [TestMethod]
    public void Lengths_follow_the_api_server()
    {
        var name = new string('a', 254);
        Assert.AreEqual($"Pod \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": must be no more than 253 characters", PodValidation.Validate(Pod(name)));
        Assert.IsNull(PodValidation.Validate(Pod(new string('a', 253))));
        var label = new string('c', 64);
        Assert.AreEqual($"Pod \"web\" is invalid: spec.containers[0].name: Invalid value: \"{label}\": must be no more than 63 characters", PodValidation.Validate(Pod(containers: [label])));
        Assert.AreEqual($"Pod \"web\" is invalid: metadata.namespace: Invalid value: \"{label}\": must be no more than 63 characters", PodValidation.Validate(Pod(ns: label)));
    }

    [TestMethod]
    [DataRow("..")]
    [DataRow("a.b")]
    [DataRow("kube/system")]
    [DataRow("Default")]
    public void A_namespace_is_a_dns_label(string ns) =>
        Assert.AreEqual($"Pod \"web\" is invalid: metadata.namespace: Invalid value: \"{ns}\": {Label}", PodValidation.Validate(Pod(ns: ns)));

    [TestMethod]
    [DataRow("../../../../../tmp/x/escapedc")]
    [DataRow("UPPER")]
    [DataRow("a.b")]
    [DataRow("%2e%2e")]
    public void A_container_name_is_a_dns_label(string name) =>
        Assert.AreEqual($"Pod \"web\" is invalid: spec.containers[1].name: Invalid value: \"{name}\": {Label}", PodValidation.Validate(Pod(containers: ["main", name])));

    [TestMethod]
    public void Container_names_are_unique_across_init_and_app_containers()
    {
        Assert.AreEqual("Pod \"web\" is invalid: spec.containers[1].name: Duplicate value: \"main\"", PodValidation.Validate(Pod(containers: ["main", "main"])));
        Assert.AreEqual("Pod \"web\" is invalid: spec.containers[0].name: Duplicate value: \"setup\"", PodValidation.Validate(Pod(inits: ["setup"], containers: ["setup"])));
        Assert.AreEqual("Pod \"web\" is invalid: spec.containers[0].name: Required value", PodValidation.Validate(Pod(containers: [""])));
    }

    [TestMethod]
    public void Volume_names_are_unique_dns_labels()
    {
        Assert.AreEqual($"Pod \"web\" is invalid: spec.volumes[0].name: Invalid value: \"../v\": {Label}", PodValidation.Validate(Pod(volumes: ["../v"])));
        Assert.AreEqual("Pod \"web\" is invalid: spec.volumes[1].name: Duplicate value: \"data\"", PodValidation.Validate(Pod(volumes: ["data", "data"])));
    }

    [TestMethod]
    [DataRow("../escape")]
    [DataRow("a/b")]
    [DataRow("%2e%2e")]
    [DataRow("")]
    public void A_uid_must_be_one_plain_path_segment(string uid)
    {
        var expected = uid.Length == 0
            ? "Pod \"web\" is invalid: metadata.uid: Required value: the pod has no UID"
            : $"Pod \"web\" is invalid: metadata.uid: Invalid value: \"{uid}\": must be a UUID (alphanumeric characters and '-', at most 128)";
        Assert.AreEqual(expected, PodValidation.Validate(Pod(uid: uid)));
    }

    [TestMethod]
    public void The_number_of_containers_is_bounded_by_the_setting()
    {
        var many = Enumerable.Range(0, 10_000).Select(i => $"c{i}").ToArray();
        Assert.AreEqual("Pod \"web\" is invalid: spec.containers: Too many: 10000: must have at most 100 items (init and app containers together; the node's MaxContainersPerPod)", PodValidation.Validate(Pod(containers: many)));
        Assert.IsNull(PodValidation.Validate(Pod(containers: many[..99], inits: ["setup"])));
        Assert.IsNotNull(PodValidation.Validate(Pod(containers: many[..3]), maxContainers: 2));
    }

    [TestMethod]
    public void Every_error_is_listed_as_the_api_server_lists_them()
    {
        var message = PodValidation.Validate(Pod("Bad", containers: ["A", "A"]));
        Assert.AreEqual($"Pod \"Bad\" is invalid: [metadata.name: Invalid value: \"Bad\": {Subdomain}, spec.containers[0].name: Invalid value: \"A\": {Label}, spec.containers[1].name: Invalid value: \"A\": {Label}]", message);
        Assert.AreEqual("Pod \"\" is invalid: [metadata.name: Required value: name or generateName is required, spec.containers: Required value]", PodValidation.Validate(new V1Pod { Metadata = new V1ObjectMeta { Uid = "u" }, Spec = new V1PodSpec() }));
    }
}
