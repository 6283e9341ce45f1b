namespace Krustlet.Stages.ImagePull;

/// <summary>What an image's config says a container should run with when the pod does not say.</summary>
/// <param name="Entrypoint">The image's Entrypoint (Kubernetes: overridden by <c>command</c>).</param>
/// <param name="Cmd">The image's Cmd (Kubernetes: overridden by <c>args</c>).</param>
/// <param name="Env">The image's environment, <c>NAME=value</c> pairs as they appear in the config.</param>
/// <param name="WorkingDir">The image's working directory.</param>
public sealed record ImageDefaults(
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Cmd,
    IReadOnlyList<string> Env,
    string? WorkingDir)
{
    public static ImageDefaults None { get; } = new([], [], [], null);
}

/// <summary>One container's pulled image: the module file on disk and where it came from.</summary>
/// <param name="Image">The image reference as the pod names it.</param>
/// <param name="Digest">The content digest of the module bytes (<c>sha256:…</c>): the compile cache's key.</param>
/// <param name="ModulePath">The module file in the content store.</param>
/// <param name="ModuleName">A name for the module, used as argv[0] when the pod gives no command.</param>
/// <param name="Defaults">The image config's defaults for the container.</param>
public sealed record PulledImage(string Image, string Digest, string ModulePath, string ModuleName, ImageDefaults Defaults);

/// <summary>
/// The image pull stage's output, read by the compile and run stages: every container's (init and app)
/// pulled image, by container name.
/// </summary>
public sealed record PulledImages(IReadOnlyDictionary<string, PulledImage> ByContainer);
