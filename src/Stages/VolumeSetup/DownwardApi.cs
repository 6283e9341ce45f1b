using System.Globalization;
using System.Text;
using k8s.Models;
using Krustlet.Stages.Admission;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>The downward API: fields of the pod and resources of its containers, as env values and files.</summary>
public sealed class DownwardApi(NodeAllocatable node, string nodeIp)
{
    /// <summary>The value of a <c>fieldRef</c>; null for a label or annotation the pod does not have.</summary>
    public string? Field(V1Pod pod, string fieldPath, bool forVolume)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(fieldPath);
        var meta = pod.Metadata;
        switch (fieldPath)
        {
            case "metadata.name":
                return meta.Name;
            case "metadata.namespace":
                return meta.Namespace();
            case "metadata.uid":
                return meta.Uid;
            case "spec.nodeName":
                return pod.Spec?.NodeName ?? node.NodeName;
            case "spec.serviceAccountName":
                return pod.Spec?.ServiceAccountName ?? "default";
            case "status.hostIP" or "status.podIP" or "status.hostIPs" or "status.podIPs":
                return nodeIp;
            case "metadata.labels" when forVolume:
                return Format(meta.Labels);
            case "metadata.annotations" when forVolume:
                return Format(meta.Annotations);
        }

        if (TrySubscript(fieldPath, "metadata.labels", out var label))
        {
            return meta.Labels is { } labels && labels.TryGetValue(label, out var l) ? l : null;
        }

        if (TrySubscript(fieldPath, "metadata.annotations", out var annotation))
        {
            return meta.Annotations is { } annotations && annotations.TryGetValue(annotation, out var a) ? a : null;
        }

        throw new PodConfigException($"unsupported fieldPath \"{fieldPath}\"{(forVolume ? " in a downwardAPI volume" : string.Empty)}");
    }

    /// <summary>The value of a <c>resourceFieldRef</c>: the container's limit or request divided by the divisor, rounded up.</summary>
    public string Resource(V1Pod pod, string containerName, string resource, ResourceQuantity? divisor)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var container = PodContainers.All(pod).FirstOrDefault(c => c.Name == containerName)
            ?? throw new PodConfigException($"resourceFieldRef names container \"{containerName}\", which the pod does not have");
        var parts = resource.Split('.', 2);
        if (parts.Length != 2 || parts[0] is not ("limits" or "requests") || parts[1] is not ("cpu" or "memory" or "ephemeral-storage"))
        {
            throw new PodConfigException($"unsupported resource \"{resource}\" in resourceFieldRef");
        }

        var table = parts[0] == "limits" ? container.Resources?.Limits : container.Resources?.Requests;
        decimal value;
        if (table is not null && table.TryGetValue(parts[1], out var quantity))
        {
            value = (decimal)quantity.ToDouble();
        }
        else if (parts[0] == "limits" || (table?.Count ?? 0) == 0)
        {
            // An unset limit is the node's allocatable, as the kubelet reports it; an unset request is 0 (or the limit).
            value = parts[0] == "limits"
                ? parts[1] == "cpu" ? (decimal)node.AllocatableCpu.ToDouble() : (decimal)node.AllocatableMemory.ToDouble()
                : container.Resources?.Limits is { } limits && limits.TryGetValue(parts[1], out var limit) ? (decimal)limit.ToDouble() : 0m;
        }
        else
        {
            value = 0m;
        }

        var by = divisor is null ? 1m : (decimal)divisor.ToDouble();
        if (by <= 0)
        {
            throw new PodConfigException($"the divisor of resourceFieldRef {resource} must be positive");
        }

        return Math.Ceiling(value / by).ToString(CultureInfo.InvariantCulture);
    }

    private static bool TrySubscript(string fieldPath, string prefix, out string key)
    {
        key = string.Empty;
        if (!fieldPath.StartsWith(prefix + "['", StringComparison.Ordinal) || !fieldPath.EndsWith("']", StringComparison.Ordinal))
        {
            return false;
        }

        key = fieldPath[(prefix.Length + 2)..^2];
        return key.Length > 0;
    }

    // Quoted as Go's strconv.Quote does, which the kubelet uses.
    private static string Quote(string value)
    {
        var quoted = new StringBuilder("\"");
        foreach (var c in value)
        {
            quoted.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                < ' ' => string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"),
                _ => c.ToString(),
            });
        }

        return quoted.Append('"').ToString();
    }

    // As the kubelet writes labels and annotations into a file: key="value" lines, sorted, values quoted.
    private static string Format(IDictionary<string, string>? map)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in (map ?? new Dictionary<string, string>()).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.Append(key).Append('=').Append(Quote(value)).Append('\n');
        }

        return text.ToString().TrimEnd('\n');
    }
}
