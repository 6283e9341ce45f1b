using k8s.Models;

namespace Krustlet.Stages;

/// <summary>
/// The pod annotation that gives a pod's WASI 0.2 components outbound network access:
/// <c>krustlet.dev/network: outbound</c> (<c>wasi:sockets</c> may reach every address the node can,
/// and <c>ip-name-lookup</c> resolves names). Without it a component's sockets are refused every
/// address (access-denied). Core modules (WASI preview 1) have no sockets: the annotation changes
/// nothing for them. A node can forbid it (<c>Wasm:AllowNetwork</c> false): admission then refuses
/// a pod that asks (reason <see cref="KubeletReasons.NetworkForbidden"/>).
/// </summary>
public static class OutboundNetwork
{
    /// <summary>The annotation's key.</summary>
    public const string Annotation = "krustlet.dev/network";

    /// <summary>The value that turns outbound network on.</summary>
    public const string Outbound = "outbound";

    /// <summary>The value that says so explicitly when it is off (the same as no annotation).</summary>
    public const string None = "none";

    /// <summary>Whether the pod asks for outbound network (the annotation is <c>outbound</c>).</summary>
    public static bool Requested(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return string.Equals(Value(pod), Outbound, StringComparison.Ordinal);
    }

    /// <summary>Why the annotation's value is not understood, or null when it is absent, <c>outbound</c> or <c>none</c>.</summary>
    public static string? Invalid(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return Value(pod) is { } value && value is not (Outbound or None)
            ? $"metadata.annotations[{Annotation}]: unsupported value \"{value}\": use \"{Outbound}\" to give the pod's components outbound network, or \"{None}\""
            : null;
    }

    private static string? Value(V1Pod pod) =>
        pod.Metadata?.Annotations is { } annotations && annotations.TryGetValue(Annotation, out var value) ? value : null;
}
