using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Krustlet.Stages.ImagePull;

/// <summary>
/// An image reference in the Docker grammar: <c>[registry[:port]/]path[:tag][@digest]</c>. A name
/// without a registry is on <c>docker.io</c>, and a one-part name there is under <c>library/</c>; a
/// reference with neither tag nor digest means <c>:latest</c>.
/// </summary>
public sealed partial record ImageReference
{
    public const string DockerHub = "docker.io";

    private ImageReference(string registry, string repository, string? tag, string? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host, with its port when it has one.</summary>
    public string Registry { get; }

    /// <summary>The repository path, for example <c>library/hello</c>.</summary>
    public string Repository { get; }

    public string? Tag { get; }

    /// <summary>The manifest digest (<c>sha256:…</c>) when the reference pins one.</summary>
    public string? Digest { get; }

    /// <summary>What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.</summary>
    public string ManifestReference => Digest ?? Tag ?? "latest";

    /// <summary>True for <c>:latest</c> or no tag, where Kubernetes' default pull policy is Always.</summary>
    public bool IsLatest => Digest is null && (Tag is null or "latest");

    /// <summary>The host that serves the registry API (Docker Hub's API is not at docker.io).</summary>
    public string ApiHost => Registry == DockerHub ? "registry-1.docker.io" : Registry;

    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? string.Empty : ":" + Tag)}{(Digest is null ? string.Empty : "@" + Digest)}";

    public static ImageReference Parse(string text) =>
        TryParse(text, out var reference, out var error) ? reference : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out ImageReference? reference, [NotNullWhen(false)] out string? error)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "the image reference is empty";
            return false;
        }

        var rest = text.Trim();
        string? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (!DigestPattern().IsMatch(digest))
            {
                error = $"invalid reference format: \"{text}\" has a malformed digest \"{digest}\" (expected sha256: and 64 hex digits)";
                return false;
            }
        }

        string? tag = null;
        var lastSlash = rest.LastIndexOf('/');
        var colon = rest.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagPattern().IsMatch(tag))
            {
                error = $"invalid reference format: \"{text}\" has a malformed tag \"{tag}\"";
                return false;
            }
        }

        var registry = DockerHub;
        var firstSlash = rest.IndexOf('/', StringComparison.Ordinal);
        if (firstSlash > 0)
        {
            var first = rest[..firstSlash];
            if (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost")
            {
                registry = first == "index.docker.io" ? DockerHub : first;
                rest = rest[(firstSlash + 1)..];
                if (!RegistryPattern().IsMatch(registry))
                {
                    error = $"invalid reference format: \"{text}\" has a malformed registry \"{registry}\"";
                    return false;
                }
            }
        }

        if (registry == DockerHub && !rest.Contains('/', StringComparison.Ordinal))
        {
            rest = "library/" + rest;
        }

        if (rest.Split('/').Any(c => !ComponentPattern().IsMatch(c)))
        {
            error = $"invalid reference format: \"{text}\": a repository name must be lowercase letters, digits and separators";
            return false;
        }

        reference = new ImageReference(registry, rest, tag ?? (digest is null ? "latest" : null), digest);
        error = null;
        return true;
    }

    /// <summary>The same repository, pinned to <paramref name="digest"/>.</summary>
    public ImageReference WithDigest(string digest) => new(Registry, Repository, null, digest);

    [GeneratedRegex("^sha256:[a-f0-9]{64}$")]
    private static partial Regex DigestPattern();

    [GeneratedRegex(@"^[\w][\w.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?$")]
    private static partial Regex RegistryPattern();

    [GeneratedRegex("^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentPattern();
}
