namespace Krustlet.Stages.ImagePull.Registry;

/// <summary>How the agent reaches registries, and how much it accepts from them.</summary>
public sealed record RegistryOptions
{
    /// <summary>Registries (host or host:port) spoken to over plain HTTP. Loopback hosts always are, as in Docker.</summary>
    public IReadOnlySet<string> InsecureRegistries { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Per registry, mirrors tried in order before the registry itself (pulls only).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Mirrors { get; init; } = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);

    public long MaxManifestBytes { get; init; } = 4 * 1024 * 1024;

    public long MaxConfigBytes { get; init; } = 1024 * 1024;

    /// <summary>The largest layer blob downloaded (a tar layer, or a wasm layer).</summary>
    public long MaxLayerBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>The largest module extracted from a tar layer.</summary>
    public long MaxModuleBytes { get; init; } = 512L * 1024 * 1024;

    public bool IsInsecure(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (InsecureRegistries.Contains(host))
        {
            return true;
        }

        var name = host.StartsWith('[') ? host[..(host.IndexOf(']', StringComparison.Ordinal) + 1)] : host.Split(':')[0];
        return name is "localhost" or "[::1]" || name.StartsWith("127.", StringComparison.Ordinal);
    }
}
