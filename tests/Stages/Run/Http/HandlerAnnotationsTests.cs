using k8s.Models;
using Krustlet.Stages.Run.Http;

namespace Krustlet.Stages.Tests.Run.Http;

/// <summary>A handler's launch from its pod: the http port, the pod's overrides of the node's limits, its grace period.</summary>
[TestClass]
public sealed class HandlerAnnotationsTests
{
    private static (V1Pod Pod, V1Container Container) Pod(Dictionary<string, string>? annotations = null, long? grace = null, string portName = "http")
    {
        var container = new V1Container { Name = "web", Image = "x", Ports = [new V1ContainerPort { Name = portName, ContainerPort = 8080 }] };
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop", Annotations = annotations },
            Spec = new V1PodSpec { Containers = [container], TerminationGracePeriodSeconds = grace },
        };
        return (pod, container);
    }

    [TestMethod]
    public void A_port_named_http_makes_a_handler_with_the_node_defaults_and_30_s_of_grace()
    {
        var (pod, container) = Pod();
        var launch = HandlerAnnotations.Of(pod, container)!;
        Assert.AreEqual(new HttpHandlerLaunch(8080, null, null, TimeSpan.FromSeconds(30), "shop", "web"), launch);
        var (other, plain) = Pod(portName: "metrics");
        Assert.IsNull(HandlerAnnotations.Of(other, plain));
    }

    [TestMethod]
    [DataRow("500ms", 500)]
    [DataRow("10s", 10_000)]
    [DataRow("2m", 120_000)]
    [DataRow("7", 7_000)]
    public void The_request_timeout_annotation_takes_a_duration(string value, int milliseconds)
    {
        var (pod, container) = Pod(new() { [HandlerAnnotations.RequestTimeout] = value, [HandlerAnnotations.MaxConcurrentRequests] = "8" }, grace: 5);
        var launch = HandlerAnnotations.Of(pod, container)!;
        Assert.AreEqual(TimeSpan.FromMilliseconds(milliseconds), launch.RequestTimeout);
        Assert.AreEqual(8, launch.MaxConcurrentRequests);
        Assert.AreEqual(TimeSpan.FromSeconds(5), launch.GracePeriod);
        Assert.IsNull(launch.Problem);
    }

    [TestMethod]
    [DataRow(HandlerAnnotations.RequestTimeout, "soon", "annotation krustlet.dev/http-request-timeout: \"soon\" is not a positive duration (like 500ms, 10s, 2m)")]
    [DataRow(HandlerAnnotations.RequestTimeout, "0s", "annotation krustlet.dev/http-request-timeout: \"0s\" is not a positive duration (like 500ms, 10s, 2m)")]
    [DataRow(HandlerAnnotations.MaxConcurrentRequests, "0", "annotation krustlet.dev/http-max-concurrent-requests: \"0\" is not a whole number of at least 1")]
    public void A_bad_annotation_is_a_problem_the_run_fails_to_start_with(string annotation, string value, string problem)
    {
        var (pod, container) = Pod(new() { [annotation] = value });
        Assert.AreEqual(problem, HandlerAnnotations.Of(pod, container)!.Problem);
    }
}
