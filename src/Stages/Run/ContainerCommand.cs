using k8s.Models;
using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.Run;

/// <summary>Builds a container's argument vector the way Kubernetes combines command and args with the image's Entrypoint and Cmd.</summary>
public static class ContainerCommand
{
    /// <summary>
    /// <list type="bullet">
    /// <item><c>command</c> given: command, then <c>args</c> (the image's Entrypoint and Cmd are ignored);</item>
    /// <item>otherwise the image's Entrypoint, then <c>args</c> if given, else the image's Cmd.</item>
    /// </list>
    /// argv[0] is <c>command[0]</c> (or the Entrypoint's first word); when neither exists it is the module's
    /// name, followed by args or Cmd. (The image pull stage puts the module's own path, when an image's Cmd
    /// names it, into the Entrypoint.)
    /// </summary>
    public static IReadOnlyList<string> Argv(V1Container container, ImageDefaults image, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrEmpty(moduleName);
        if (container.Command is { Count: > 0 } command)
        {
            return [.. command, .. container.Args ?? []];
        }

        IReadOnlyList<string> rest = container.Args is { Count: > 0 } args ? [.. args] : image.Cmd;
        return image.Entrypoint.Count > 0 ? [.. image.Entrypoint, .. rest] : [moduleName, .. rest];
    }
}
