using System.Text;
using System.Text.RegularExpressions;
using k8s.Models;
using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>
/// A container's environment as the kubelet builds it: the image's Env, then <c>envFrom</c> sources in
/// order (with their prefix; keys that are not valid names are skipped), then <c>env</c> entries in order,
/// each value expanded with <c>$(VAR)</c> against what came before it. A later definition replaces an
/// earlier one. A missing configMap, secret or key fails with CreateContainerConfigError unless the
/// reference is optional.
/// </summary>
public sealed partial class EnvironmentResolver(IPodResources resources, DownwardApi downward)
{
    [GeneratedRegex("^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    private static partial Regex EnvName();

    public static bool IsValidName(string name) => EnvName().IsMatch(name);

    public async Task<IReadOnlyList<KeyValuePair<string, string>>> ResolveAsync(V1Pod pod, V1Container container, ImageDefaults image, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(image);
        var ns = pod.Namespace();
        var env = new OrderedEnv();
        foreach (var entry in image.Env)
        {
            var parts = entry.Split('=', 2);
            env.Set(parts[0], parts.Length > 1 ? parts[1] : string.Empty);
        }

        // Variables defined by the pod (envFrom and env) are what $(VAR) can refer to.
        var defined = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in container.EnvFrom ?? [])
        {
            IDictionary<string, string>? values = null;
            if (source.ConfigMapRef is { } configMapRef)
            {
                var map = await resources.GetConfigMapAsync(ns, configMapRef.Name, cancellationToken);
                if (map is null && configMapRef.Optional != true)
                {
                    throw new PodConfigException($"configmap \"{configMapRef.Name}\" not found");
                }

                values = map?.Data;
            }
            else if (source.SecretRef is { } secretRef)
            {
                var secret = await resources.GetAsync(ns, secretRef.Name, cancellationToken);
                if (secret is null && secretRef.Optional != true)
                {
                    throw new PodConfigException($"secret \"{secretRef.Name}\" not found");
                }

                values = secret?.Data?.ToDictionary(p => p.Key, p => Encoding.UTF8.GetString(p.Value));
            }

            foreach (var (key, value) in values ?? new Dictionary<string, string>())
            {
                var name = (source.Prefix ?? string.Empty) + key;
                if (IsValidName(name))
                {
                    env.Set(name, value);
                    defined[name] = value;
                }
            }
        }

        foreach (var variable in container.Env ?? [])
        {
            string? value;
            if (variable.ValueFrom is null)
            {
                value = VariableExpansion.Expand(variable.Value ?? string.Empty, n => defined.TryGetValue(n, out var v) ? v : null);
            }
            else
            {
                value = await FromSourceAsync(pod, container, variable, ns, cancellationToken);
                if (value is null)
                {
                    continue; // an optional reference to something missing: the variable is not set
                }
            }

            env.Set(variable.Name, value);
            defined[variable.Name] = value;
        }

        return env.ToList();
    }

    private async Task<string?> FromSourceAsync(V1Pod pod, V1Container container, V1EnvVar variable, string ns, CancellationToken cancellationToken)
    {
        var from = variable.ValueFrom;
        if (from.FieldRef is { } field)
        {
            return downward.Field(pod, field.FieldPath, forVolume: false) ?? string.Empty;
        }

        if (from.ResourceFieldRef is { } resource)
        {
            return downward.Resource(pod, string.IsNullOrEmpty(resource.ContainerName) ? container.Name : resource.ContainerName, resource.Resource, resource.Divisor);
        }

        if (from.ConfigMapKeyRef is { } mapKey)
        {
            var map = await resources.GetConfigMapAsync(ns, mapKey.Name, cancellationToken);
            if (map?.Data?.TryGetValue(mapKey.Key, out var value) == true)
            {
                return value;
            }

            return mapKey.Optional == true
                ? null
                : throw new PodConfigException(map is null ? $"configmap \"{mapKey.Name}\" not found" : $"couldn't find key {mapKey.Key} in ConfigMap {ns}/{mapKey.Name}");
        }

        if (from.SecretKeyRef is { } secretKey)
        {
            var secret = await resources.GetAsync(ns, secretKey.Name, cancellationToken);
            if (secret?.Data?.TryGetValue(secretKey.Key, out var bytes) == true)
            {
                return Encoding.UTF8.GetString(bytes);
            }

            return secretKey.Optional == true
                ? null
                : throw new PodConfigException(secret is null ? $"secret \"{secretKey.Name}\" not found" : $"couldn't find key {secretKey.Key} in Secret {ns}/{secretKey.Name}");
        }

        throw new PodConfigException($"env {variable.Name} has a valueFrom with no source");
    }

    /// <summary>Names in first-definition order; a later value replaces an earlier one.</summary>
    private sealed class OrderedEnv
    {
        private readonly List<string> _order = [];
        private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

        public void Set(string name, string value)
        {
            if (!_values.ContainsKey(name))
            {
                _order.Add(name);
            }

            _values[name] = value;
        }

        public List<KeyValuePair<string, string>> ToList() => [.. _order.Select(n => new KeyValuePair<string, string>(n, _values[n]))];
    }
}
