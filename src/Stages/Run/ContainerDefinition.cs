using k8s.Models;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Run;

/// <summary>
/// What a container runs, as the upstream stages resolved it for one version of the pod: its spec, pulled
/// image, compiled module and, when the volume stage gave them, its environment and mounts.
/// </summary>
internal sealed record ContainerDefinition(V1Container Spec, PulledImage Image, CompiledArtifact Artifact, PreparedContainer? Prepared)
{
    public string Name => Spec.Name;

    /// <summary>Every container's (init and app) definition, by name, from the work item's features.</summary>
    public static IReadOnlyDictionary<string, ContainerDefinition> Of(V1Pod pod, CompiledModules compiled, PulledImages pulled, PreparedContainers? prepared) =>
        PodContainers.All(pod).ToDictionary(
            c => c.Name,
            c => new ContainerDefinition(c, pulled.ByContainer[c.Name], compiled.ByContainer[c.Name], prepared?.ByContainer.GetValueOrDefault(c.Name)),
            StringComparer.Ordinal);

    /// <summary>One run of this definition, logging to <paramref name="logPath"/>.</summary>
    public ContainerLaunch Launch(string logPath, LogRotationOptions rotation) => new(
        Name,
        Artifact,
        ContainerCommand.Argv(Spec, Image.Defaults, Image.ModuleName),
        Prepared?.Env ?? ImageEnvironment(Image.Defaults),
        Prepared?.Mounts ?? [],
        MemoryLimit(Spec),
        logPath,
        rotation);

    private static long? MemoryLimit(V1Container container) =>
        container.Resources?.Limits is { } limits && limits.TryGetValue("memory", out var memory) ? memory.ToInt64() : null;

    private static IReadOnlyList<KeyValuePair<string, string>> ImageEnvironment(ImageDefaults defaults) =>
        [.. defaults.Env.Select(e => e.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p.Length > 1 ? p[1] : string.Empty))];
}
