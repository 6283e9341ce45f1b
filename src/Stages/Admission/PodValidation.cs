using System.Globalization;
using System.Text.RegularExpressions;
using k8s.Models;

namespace Krustlet.Stages.Admission;

/// <summary>
/// Validates the names in a pod as the API server does (apimachinery's DNS-1123 rules and wording), so
/// a pod the API server would have refused is refused here too: in standalone mode nothing else checks
/// a manifest, and in node mode the agent does not trust that the API server did. Names become paths
/// (logs, volumes, state), so this runs before any stage builds one.
/// </summary>
public static partial class PodValidation
{
    /// <summary>The default bound on a pod's init and app containers together.</summary>
    public const int DefaultMaxContainers = 100;

    private const int LabelMaxLength = 63;
    private const int SubdomainMaxLength = 253;
    private const int UidMaxLength = 128;

    private const string LabelFormat = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    private const string SubdomainFormat = LabelFormat + "(\\." + LabelFormat + ")*";

    private const string LabelMessage =
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '" + LabelFormat + "')";

    private const string SubdomainMessage =
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '" + SubdomainFormat + "')";

    /// <summary>
    /// The API server's message for an invalid pod (<c>Pod "x" is invalid: ...</c>, every error found,
    /// as it lists them), or null when the pod's names are valid.
    /// </summary>
    public static string? Validate(V1Pod pod, int maxContainers = DefaultMaxContainers)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var errors = new List<string>();
        var metadata = pod.Metadata;
        if (string.IsNullOrEmpty(metadata?.Name))
        {
            errors.Add("metadata.name: Required value: name or generateName is required");
        }
        else
        {
            Subdomain(errors, "metadata.name", metadata.Name);
        }

        if (metadata?.NamespaceProperty is { } ns)
        {
            Label(errors, "metadata.namespace", ns);
        }

        Uid(errors, metadata?.Uid);

        var spec = pod.Spec;
        if (spec?.Containers is not { Count: > 0 })
        {
            errors.Add("spec.containers: Required value");
        }

        var inits = spec?.InitContainers ?? [];
        var apps = spec?.Containers ?? [];
        var total = inits.Count + apps.Count;
        if (total > maxContainers)
        {
            errors.Add($"spec.containers: Too many: {total}: must have at most {maxContainers} items (init and app containers together; the node's MaxContainersPerPod)");
        }
        else
        {
            // Container names are unique across init and app containers (and so are their log directories).
            var seen = new HashSet<string>(StringComparer.Ordinal);
            Containers(errors, "spec.initContainers", inits, seen);
            Containers(errors, "spec.containers", apps, seen);
        }

        if (spec?.RestartPolicy is { Length: > 0 } restart && !RestartPolicies.Contains(restart, StringComparer.Ordinal))
        {
            errors.Add($"spec.restartPolicy: Unsupported value: {Quote(restart)}: supported values: {string.Join(", ", RestartPolicies.Select(Quote))}");
        }

        var volumes = new HashSet<string>(StringComparer.Ordinal);
        var specVolumes = spec?.Volumes ?? [];
        for (var i = 0; i < specVolumes.Count; i++)
        {
            var field = $"spec.volumes[{i}].name";
            var name = specVolumes[i].Name;
            if (string.IsNullOrEmpty(name))
            {
                errors.Add($"{field}: Required value");
            }
            else if (Label(errors, field, name) && !volumes.Add(name))
            {
                errors.Add($"{field}: Duplicate value: {Quote(name)}");
            }
        }

        if (errors.Count == 0)
        {
            return null;
        }

        var what = $"Pod {Quote(metadata?.Name ?? string.Empty)} is invalid: ";
        return errors.Count == 1 ? what + errors[0] : $"{what}[{string.Join(", ", errors)}]";
    }

    private static void Containers(List<string> errors, string path, IList<V1Container> containers, HashSet<string> seen)
    {
        for (var i = 0; i < containers.Count; i++)
        {
            var field = $"{path}[{i}].name";
            var name = containers[i]?.Name;
            if (string.IsNullOrEmpty(name))
            {
                errors.Add($"{field}: Required value");
            }
            else if (Label(errors, field, name) && !seen.Add(name))
            {
                errors.Add($"{field}: Duplicate value: {Quote(name)}");
            }

            if (containers[i]?.ImagePullPolicy is { Length: > 0 } pull && !PullPolicies.Contains(pull, StringComparer.Ordinal))
            {
                errors.Add($"{path}[{i}].imagePullPolicy: Unsupported value: {Quote(pull)}: supported values: {string.Join(", ", PullPolicies.Select(Quote))}");
            }
        }
    }

    // In the order the API server lists them.
    private static readonly string[] RestartPolicies = ["Always", "OnFailure", "Never"];
    private static readonly string[] PullPolicies = ["Always", "IfNotPresent", "Never"];

    private static bool Label(List<string> errors, string field, string value)
    {
        var before = errors.Count;
        if (value.Length > LabelMaxLength)
        {
            errors.Add($"{field}: Invalid value: {Quote(value)}: must be no more than {LabelMaxLength} characters");
        }

        if (!LabelPattern().IsMatch(value))
        {
            errors.Add($"{field}: Invalid value: {Quote(value)}: {LabelMessage}");
        }

        return errors.Count == before;
    }

    private static void Subdomain(List<string> errors, string field, string value)
    {
        if (value.Length > SubdomainMaxLength)
        {
            errors.Add($"{field}: Invalid value: {Quote(value)}: must be no more than {SubdomainMaxLength} characters");
        }

        if (!SubdomainPattern().IsMatch(value))
        {
            errors.Add($"{field}: Invalid value: {Quote(value)}: {SubdomainMessage}");
        }
    }

    // The API server makes UIDs (UUIDs); a client cannot choose one. The agent names directories and
    // state files after them, so it accepts only what a single plain path segment can hold.
    private static void Uid(List<string> errors, string? uid)
    {
        if (string.IsNullOrEmpty(uid))
        {
            errors.Add("metadata.uid: Required value: the pod has no UID");
        }
        else if (uid.Length > UidMaxLength || !UidPattern().IsMatch(uid))
        {
            errors.Add($"metadata.uid: Invalid value: {Quote(uid)}: must be a UUID (alphanumeric characters and '-', at most {UidMaxLength})");
        }
    }

    // Go's %q: the value quoted, with control characters escaped, so a NUL or a newline is visible.
    private static string Quote(string value)
    {
        var shown = value.Length > 300 ? value[..300] + "..." : value;
        var builder = new System.Text.StringBuilder("\"");
        foreach (var c in shown)
        {
            builder.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                _ when char.IsControl(c) => string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"),
                _ => c.ToString(),
            });
        }

        return builder.Append('"').ToString();
    }

    [GeneratedRegex("^" + LabelFormat + "\\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelPattern();

    [GeneratedRegex("^" + SubdomainFormat + "\\z", RegexOptions.CultureInvariant)]
    private static partial Regex SubdomainPattern();

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex UidPattern();
}
