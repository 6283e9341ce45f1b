using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Run;

/// <summary>
/// What a container runs, as the upstream stages resolved it for one version of the pod: its spec, pulled
/// image, compiled module and, when the volume stage gave them, its environment and mounts. An update of
/// the pod brings new definitions; a container's next run uses the one current then.
/// </summary>
internal sealed record ContainerDefinition(V1Container Spec, PulledImage Image, CompiledArtifact Artifact, PreparedContainer? Prepared)
{
    /// <summary>For an app container with a port named <c>http</c>: how it serves requests; null otherwise.</summary>
    public Http.HttpHandlerLaunch? Http { get; init; }

    public string Name => Spec.Name;

    /// <summary>The pod's annotation asks for outbound network (read with each version of the pod, so a change applies at the next run).</summary>
    public bool OutboundNetwork { get; init; }

    /// <summary>Every container's (init and app) definition, by name, from the work item's features.</summary>
    public static IReadOnlyDictionary<string, ContainerDefinition> Of(V1Pod pod, CompiledModules compiled, PulledImages pulled, PreparedContainers? prepared) =>
        PodContainers.All(pod).ToDictionary(
            c => c.Name,
            c => new ContainerDefinition(c, pulled.ByContainer[c.Name], compiled.ByContainer[c.Name], prepared?.ByContainer.GetValueOrDefault(c.Name))
            {
                // Init containers run to completion: only app containers serve.
                Http = pod.Spec.Containers.Contains(c) ? Run.Http.HandlerAnnotations.Of(pod, c) : null,
                OutboundNetwork = Stages.OutboundNetwork.Requested(pod),
            },
            StringComparer.Ordinal);

    /// <summary>
    /// Whether a running container must be restarted to run this definition instead of <paramref name="running"/>.
    /// The kubelet decides by a hash of the container's name and image (since Kubernetes 1.31), not of the
    /// module the tag resolves to: a tag that moved is run at the container's next start, not forced.
    /// The image is also the only field of a container the API server lets change on a running pod.
    /// </summary>
    public bool RestartsOver(ContainerDefinition running) => !string.Equals(Spec.Image, running.Spec.Image, StringComparison.Ordinal);

    /// <summary>One run of this definition, logging to <paramref name="logPath"/>.</summary>
    public ContainerLaunch Launch(string logPath, LogRotationOptions rotation) => new(
        Name,
        Artifact,
        ContainerCommand.Argv(Spec, Image.Defaults, Image.ModuleName),
        Prepared?.Env ?? ImageEnvironment(Image.Defaults),
        Prepared?.Mounts ?? [],
        MemoryLimit(Spec),
        logPath,
        rotation)
    {
        Http = Http,
        OutboundNetwork = OutboundNetwork,
    };

    private static long? MemoryLimit(V1Container container) =>
        container.Resources?.Limits is { } limits && limits.TryGetValue("memory", out var memory) ? memory.ToInt64() : null;

    private static IReadOnlyList<KeyValuePair<string, string>> ImageEnvironment(ImageDefaults defaults) =>
        [.. defaults.Env.Select(e => e.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p.Length > 1 ? p[1] : string.Empty))];
}
