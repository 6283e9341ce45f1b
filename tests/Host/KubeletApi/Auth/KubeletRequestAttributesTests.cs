using Krustlet.Host.KubeletApi.Auth;

namespace Krustlet.Host.Tests.KubeletApi.Auth;

/// <summary>Requests map to the attributes the kubelet authorizes with (pkg/kubelet/server/auth.go).</summary>
[TestClass]
public sealed class KubeletRequestAttributesTests
{
    [TestMethod]
    [DataRow("GET", "/pods", "get", "proxy")]
    [DataRow("HEAD", "/pods", "get", "proxy")]
    [DataRow("GET", "/containerLogs/default/web/main", "get", "proxy")]
    [DataRow("POST", "/exec/default/web/main", "create", "proxy")]
    [DataRow("POST", "/run/default/web/main", "create", "proxy")]
    [DataRow("PUT", "/pods", "update", "proxy")]
    [DataRow("PATCH", "/pods", "patch", "proxy")]
    [DataRow("DELETE", "/pods", "delete", "proxy")]
    [DataRow("OPTIONS", "/pods", "", "proxy")]
    [DataRow("GET", "/stats", "get", "stats")]
    [DataRow("GET", "/stats/summary", "get", "stats")]
    [DataRow("GET", "/statsx", "get", "proxy")]
    [DataRow("GET", "/metrics", "get", "metrics")]
    [DataRow("GET", "/metrics/resource", "get", "metrics")]
    [DataRow("GET", "/logs/", "get", "log")]
    [DataRow("GET", "/logs/messages", "get", "log")]
    [DataRow("GET", "/spec/", "get", "spec")]
    [DataRow("GET", "/healthz", "get", "proxy")]
    public void The_verb_comes_from_the_method_and_the_subresource_from_the_path(string method, string path, string verb, string subresource)
    {
        var attributes = KubeletRequestAttributes.Of(method, path, "wasm-node");

        Assert.AreEqual(verb, attributes.Verb);
        Assert.AreEqual(subresource, attributes.Subresource);
        var resource = attributes.ToResourceAttributes();
        Assert.AreEqual("nodes", resource.Resource);
        Assert.AreEqual(string.Empty, resource.Group);
        Assert.AreEqual("v1", resource.Version);
        Assert.AreEqual("wasm-node", resource.Name);
        Assert.IsNull(resource.NamespaceProperty);
    }

    [TestMethod]
    public void A_denial_reads_as_the_kubelets()
    {
        var attributes = KubeletRequestAttributes.Of("GET", "/containerLogs/default/web/main", "wasm-node");

        Assert.AreEqual("Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])", attributes.Forbidden(new KubeletUser("alice", [])));
        Assert.AreEqual("Authorization error (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])", attributes.AuthorizationError(new KubeletUser("alice", [])));
    }
}
