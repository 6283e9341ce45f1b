using System.Globalization;

namespace Krustlet.Stages.Run;

/// <summary>
/// Where container logs live, as the kubelet lays out /var/log/pods:
/// <c>&lt;log root&gt;/&lt;namespace&gt;_&lt;name&gt;_&lt;uid&gt;/&lt;container&gt;/&lt;restart&gt;.log</c>. The run stage writes
/// there, the kubelet API reads there, and the agent forgets the directories of pods that are gone.
/// </summary>
public static class PodLogLayout
{
    /// <summary>The directory of one container's runs.</summary>
    /// <exception cref="UnsafePathException">A name would lead outside the log root (<see cref="DataPath"/>).</exception>
    public static string ContainerDirectory(string logRoot, string @namespace, string name, string uid, string container) =>
        DataPath.Under(logRoot, PodDirectoryName(@namespace, name, uid), container);

    /// <summary>The log file of one run of a container.</summary>
    /// <exception cref="UnsafePathException">A name would lead outside the log root (<see cref="DataPath"/>).</exception>
    public static string RunLog(string logRoot, string @namespace, string name, string uid, string container, int restart) =>
        DataPath.Under(logRoot, PodDirectoryName(@namespace, name, uid), container, string.Create(CultureInfo.InvariantCulture, $"{restart}.log"));

    private static string PodDirectoryName(string @namespace, string name, string uid)
    {
        // Each part on its own is a path segment: "..", "." or an empty part would otherwise hide in the joined name.
        foreach (var part in (ReadOnlySpan<string>)[@namespace, name, uid])
        {
            if (DataPath.SegmentProblem(part) is { } problem)
            {
                throw new UnsafePathException($"pod log directory: {problem}");
            }
        }

        return $"{@namespace}_{name}_{uid}";
    }

    /// <summary>The pod UID a pod's log directory belongs to: names and namespaces cannot hold '_', so the UID follows the last one.</summary>
    public static string UidOf(string podDirectory)
    {
        var name = Path.GetFileName(podDirectory);
        return name[(name.LastIndexOf('_') + 1)..];
    }
}
