namespace Krustlet.Stages.Run;

/// <summary>One running container's usage at a scrape: when its run started, its CPU time and its linear memory.</summary>
public sealed record ContainerUsageSample(string Name, DateTimeOffset StartedAt, long CpuNanoseconds, long MemoryBytes);

/// <summary>One pod's running containers' usage at a scrape.</summary>
public sealed record PodUsageSample(string Uid, string Namespace, string Name, DateTimeOffset StartTime, IReadOnlyList<ContainerUsageSample> Containers);

/// <summary>What the kubelet API's <c>/stats/summary</c> and <c>/metrics/resource</c> read: the running containers' usage.</summary>
public interface IPodUsageSource
{
    /// <summary>Every pod with a worker, with its running containers' usage now; from any thread.</summary>
    IReadOnlyList<PodUsageSample> Usage();
}
