using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Krustlet.Stages.VolumeSetup;

namespace Krustlet.Stages.Kubernetes;

/// <summary>ConfigMaps, secrets and service-account tokens read from the API server.</summary>
public sealed class KubernetesPodResources(IKubernetes client) : IPodResources
{
    public async ValueTask<V1ConfigMap?> GetConfigMapAsync(string @namespace, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedConfigMapAsync(name, @namespace, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedSecretAsync(name, @namespace, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The TokenRequest API: a token for the pod's service account, bound to the pod.</summary>
    public async ValueTask<string> RequestTokenAsync(V1Pod pod, string? audience, long expirationSeconds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var request = new Authenticationv1TokenRequest
        {
            Spec = new V1TokenRequestSpec
            {
                Audiences = audience is null ? [] : [audience],
                ExpirationSeconds = expirationSeconds,
                BoundObjectRef = new V1BoundObjectReference { Kind = "Pod", ApiVersion = "v1", Name = pod.Metadata.Name, Uid = pod.Metadata.Uid },
            },
        };
        try
        {
            var response = await client.CoreV1.CreateNamespacedServiceAccountTokenAsync(request, pod.Spec?.ServiceAccountName ?? "default", pod.Namespace(), cancellationToken: cancellationToken);
            return response.Status.Token;
        }
        catch (HttpOperationException ex)
        {
            throw new PodConfigException($"service account token for {pod.Namespace()}/{pod.Spec?.ServiceAccountName ?? "default"}: {(int)ex.Response.StatusCode} {ex.Response.ReasonPhrase}", ex);
        }
    }
}
