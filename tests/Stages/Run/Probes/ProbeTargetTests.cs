using k8s.Models;
using Krustlet.Stages.Run.Probes;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>A probe's port, resolved as the kubelet's ResolveContainerPort: by name among the container's ports, else as a number.</summary>
[TestClass]
public sealed class ProbeTargetTests
{
    private static readonly ProbeTarget Target = ProbeTarget.Of(new V1Container { Name = "main", Ports = [new V1ContainerPort { Name = "health", ContainerPort = 8081 }] }, "10.0.0.5");

    [TestMethod]
    public void A_named_port_is_the_container_port_of_that_name()
    {
        Assert.IsTrue(Target.TryResolvePort("health", out var port, out _));
        Assert.AreEqual(8081, port);
    }

    [TestMethod]
    public void A_number_is_itself_also_when_stored_as_a_string()
    {
        Assert.IsTrue(Target.TryResolvePort(9000, out var port, out _));
        Assert.AreEqual(9000, port);
        Assert.IsTrue(Target.TryResolvePort("9001", out port, out _));
        Assert.AreEqual(9001, port);
    }

    [TestMethod]
    public void An_unknown_name_or_a_port_out_of_range_is_the_kubelets_error()
    {
        Assert.IsFalse(Target.TryResolvePort("metrics", out _, out var error));
        Assert.AreEqual("strconv.Atoi: parsing \"metrics\": invalid syntax", error);
        Assert.IsFalse(Target.TryResolvePort(0, out _, out error));
        Assert.AreEqual("invalid port number: 0", error);
        Assert.IsFalse(Target.TryResolvePort(70000, out _, out error));
        Assert.AreEqual("invalid port number: 70000", error);
    }

    [TestMethod]
    public void Hosts_join_ports_as_Go_writes_them()
    {
        Assert.AreEqual("10.0.0.5:80", ProbeTarget.JoinHostPort("10.0.0.5", 80));
        Assert.AreEqual("[::1]:80", ProbeTarget.JoinHostPort("::1", 80));
    }
}
