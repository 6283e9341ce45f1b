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
    public static string ContainerDirectory(string logRoot, string @namespace, string name, string uid, string container) =>
        Path.Combine(logRoot, $"{@namespace}_{name}_{uid}", container);

    /// <summary>The log file of one run of a container.</summary>
    public static string RunLog(string logRoot, string @namespace, string name, string uid, string container, int restart) =>
        Path.Combine(ContainerDirectory(logRoot, @namespace, name, uid, container), string.Create(CultureInfo.InvariantCulture, $"{restart}.log"));

    /// <summary>The pod UID a pod's log directory belongs to: names and namespaces cannot hold '_', so the UID follows the last one.</summary>
    public static string UidOf(string podDirectory)
    {
        var name = Path.GetFileName(podDirectory);
        return name[(name.LastIndexOf('_') + 1)..];
    }
}
