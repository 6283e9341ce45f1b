using k8s.Models;
using Krustlet.Stages.Run.Probes;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>A probe as the kubelet reads it: the API server's defaults for what a pod from a file leaves unset; exec and grpc ignored.</summary>
[TestClass]
public sealed class ProbeSpecTests
{
    private static V1Probe Http(string path = "/healthz") => new() { HttpGet = new V1HTTPGetAction { Port = 8080, Path = path } };

    [TestMethod]
    public void Unset_fields_take_the_kubelets_defaults()
    {
        var spec = ProbeSpec.Of(ProbeKind.Readiness, Http())!;

        Assert.AreEqual(TimeSpan.Zero, spec.InitialDelay);
        Assert.AreEqual(TimeSpan.FromSeconds(10), spec.Period);
        Assert.AreEqual(TimeSpan.FromSeconds(1), spec.Timeout);
        Assert.AreEqual(1, spec.SuccessThreshold);
        Assert.AreEqual(3, spec.FailureThreshold);
        var get = (HttpGetProbeAction)spec.Action;
        Assert.AreEqual("http", get.Scheme);
        Assert.IsNull(get.Host, "no host: the pod's IP");
        Assert.AreEqual("Readiness", spec.Name);
    }

    [TestMethod]
    public void Set_fields_are_kept_and_an_empty_path_is_the_root()
    {
        var probe = Http(path: "");
        probe.InitialDelaySeconds = 15;
        probe.PeriodSeconds = 5;
        probe.TimeoutSeconds = 2;
        probe.SuccessThreshold = 2;
        probe.FailureThreshold = 7;
        probe.HttpGet.Scheme = "HTTPS";
        probe.HttpGet.HttpHeaders = [new V1HTTPHeader { Name = "X-Probe", Value = "1" }];

        var spec = ProbeSpec.Of(ProbeKind.Readiness, probe)!;

        Assert.AreEqual(TimeSpan.FromSeconds(15), spec.InitialDelay);
        Assert.AreEqual(TimeSpan.FromSeconds(5), spec.Period);
        Assert.AreEqual(TimeSpan.FromSeconds(2), spec.Timeout);
        Assert.AreEqual(2, spec.SuccessThreshold);
        Assert.AreEqual(7, spec.FailureThreshold);
        var get = (HttpGetProbeAction)spec.Action;
        Assert.AreEqual("https", get.Scheme);
        Assert.AreEqual("/", get.Path);
        Assert.AreEqual(new KeyValuePair<string, string>("X-Probe", "1"), get.Headers.Single());
    }

    [TestMethod]
    [DataRow(ProbeKind.Liveness)]
    [DataRow(ProbeKind.Startup)]
    public void Liveness_and_startup_always_need_one_success(ProbeKind kind)
    {
        var probe = Http();
        probe.SuccessThreshold = 3;
        Assert.AreEqual(1, ProbeSpec.Of(kind, probe)!.SuccessThreshold);
    }

    [TestMethod]
    public void A_tcpSocket_probe_is_read()
    {
        var spec = ProbeSpec.Of(ProbeKind.Liveness, new V1Probe { TcpSocket = new V1TCPSocketAction { Port = "grpc", Host = "10.0.0.1" } })!;
        var tcp = (TcpSocketProbeAction)spec.Action;
        Assert.AreEqual("grpc", tcp.Port.Value);
        Assert.AreEqual("10.0.0.1", tcp.Host);
    }

    [TestMethod]
    public void Exec_and_grpc_probes_are_ignored_as_if_absent()
    {
        Assert.IsNull(ProbeSpec.Of(ProbeKind.Liveness, new V1Probe { Exec = new V1ExecAction { Command = ["true"] } }));
        Assert.IsNull(ProbeSpec.Of(ProbeKind.Readiness, new V1Probe { Grpc = new V1GRPCAction { Port = 9000 } }));
        Assert.IsNull(ProbeSpec.Of(ProbeKind.Readiness, null));

        var probes = ContainerProbes.Of(new V1Container { Name = "main", ReadinessProbe = new V1Probe { Exec = new V1ExecAction { Command = ["true"] } } });
        Assert.IsFalse(probes.Any, "a container whose only probe is unsupported is not probed (and is ready when running)");
    }
}
