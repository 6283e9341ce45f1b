using k8s.Models;

namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>
/// What a kubelet API request asks to do, in the terms the kubelet authorizes it with
/// (<c>pkg/kubelet/server/auth.go</c>): a verb from the HTTP method on the resource <c>nodes</c>
/// (API group <c>""</c>, version <c>v1</c>) named after the node, with a subresource chosen by path.
/// </summary>
/// <param name="Verb">get (GET, HEAD), create (POST), update (PUT), patch (PATCH), delete (DELETE); empty for other methods, as the kubelet leaves it.</param>
/// <param name="Subresource">stats, metrics, log, spec, or proxy for every other path.</param>
/// <param name="NodeName">The node: the object's name.</param>
public sealed record KubeletRequestAttributes(string Verb, string Subresource, string NodeName)
{
    public const string Resource = "nodes";

    private static readonly (string Path, string Subresource)[] Subresources =
    [
        ("/stats", "stats"),
        ("/metrics", "metrics"),
        ("/logs", "log"),
        ("/spec", "spec"),
    ];

    /// <summary>The attributes of a request to <paramref name="path"/> with <paramref name="method"/> on node <paramref name="nodeName"/>.</summary>
    public static KubeletRequestAttributes Of(string method, string path, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(path);
        var verb = method.ToUpperInvariant() switch
        {
            "GET" or "HEAD" => "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => string.Empty,
        };
        var subresource = Subresources.FirstOrDefault(s => IsSubpath(path, s.Path)).Subresource ?? "proxy";
        return new KubeletRequestAttributes(verb, subresource, nodeName);
    }

    /// <summary>The SubjectAccessReview's resource attributes.</summary>
    public V1ResourceAttributes ToResourceAttributes() => new()
    {
        Verb = Verb,
        Group = string.Empty,
        Version = "v1",
        Resource = Resource,
        Subresource = Subresource,
        Name = NodeName,
    };

    /// <summary>The kubelet's answer when the request is denied: <c>Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[proxy])</c>.</summary>
    public string Forbidden(KubeletUser user) => $"Forbidden ({Describe(user)})";

    /// <summary>The kubelet's answer when the authorizer failed: <c>Authorization error (user=..., ...)</c>.</summary>
    public string AuthorizationError(KubeletUser user) => $"Authorization error ({Describe(user)})";

    private string Describe(KubeletUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return $"user={user.Name}, verb={Verb}, resource={Resource}, subresource(s)=[{Subresource}]";
    }

    /// <summary>The path itself or anything under it, as the kubelet's <c>isSubpath</c>.</summary>
    private static bool IsSubpath(string path, string prefix) =>
        path == prefix || path.StartsWith(prefix + "/", StringComparison.Ordinal);
}
