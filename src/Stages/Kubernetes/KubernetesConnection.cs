using k8s;

namespace Krustlet.Stages.Kubernetes;

/// <summary>How the agent finds its cluster, as kubectl and the kubelet do.</summary>
public static class KubernetesConnection
{
    /// <summary>
    /// The first of: the explicit <paramref name="kubeconfig"/> path (<c>--kubeconfig</c>), the
    /// <c>KUBECONFIG</c> environment variable, <c>~/.kube/config</c>, and the in-cluster service account.
    /// Throws <see cref="InvalidOperationException"/> naming what was tried when none is usable.
    /// </summary>
    public static KubernetesClientConfiguration Load(string? kubeconfig, Func<string, string?>? environment = null, string? home = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        home ??= Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var tried = new List<string>();
        foreach (var (path, source) in new[]
        {
            (kubeconfig, "--kubeconfig"),
            (environment("KUBECONFIG")?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(), "KUBECONFIG"),
            (Path.Combine(home, ".kube", "config"), "~/.kube/config"),
        })
        {
            if (string.IsNullOrEmpty(path))
            {
                continue;
            }

            if (!File.Exists(path))
            {
                if (source == "--kubeconfig")
                {
                    throw new InvalidOperationException($"--kubeconfig {path}: no such file");
                }

                tried.Add($"{source} ({path}: no such file)");
                continue;
            }

            return KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
        }

        if (KubernetesClientConfiguration.IsInCluster())
        {
            return KubernetesClientConfiguration.InClusterConfig();
        }

        tried.Add("the in-cluster service account (not running in a pod)");
        throw new InvalidOperationException($"no cluster connection found; tried {string.Join(", ", tried)}");
    }
}
