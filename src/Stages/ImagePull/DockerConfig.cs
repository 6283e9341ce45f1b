using System.Text;
using System.Text.Json;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>
/// Reads registry credentials from a Docker config (<c>.dockerconfigjson</c> secrets and the node's
/// credentials file): <c>{"auths": {"registry": {"auth": base64("user:pass")} | {"username", "password"}}}</c>.
/// Keys may carry a scheme or path (<c>https://index.docker.io/v1/</c>); Docker Hub's keys match docker.io.
/// </summary>
public static class DockerConfig
{
    /// <summary>The credentials for <paramref name="registry"/>, or null. Throws <see cref="FormatException"/> for a malformed file.</summary>
    public static RegistryCredentials? Find(string json, string registry)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(registry);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"not a Docker config: {ex.Message}", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            var auths = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("auths", out var a) ? a : root; // the old .dockercfg has no "auths"
            if (auths.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            foreach (var entry in auths.EnumerateObject())
            {
                if (!string.Equals(Normalize(entry.Name), Normalize(registry), StringComparison.OrdinalIgnoreCase) || entry.Value.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                var value = entry.Value;
                if (value.TryGetProperty("auth", out var auth) && auth.GetString() is { Length: > 0 } encoded)
                {
                    string decoded;
                    try
                    {
                        decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
                    }
                    catch (FormatException ex)
                    {
                        throw new FormatException($"the auth of {entry.Name} is not base64", ex);
                    }

                    var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                    return colon < 0
                        ? throw new FormatException($"the auth of {entry.Name} is not \"user:password\"")
                        : new RegistryCredentials(decoded[..colon], decoded[(colon + 1)..]);
                }

                if (value.TryGetProperty("username", out var user) && value.TryGetProperty("password", out var password))
                {
                    return new RegistryCredentials(user.GetString() ?? string.Empty, password.GetString() ?? string.Empty);
                }
            }

            return null;
        }
    }

    private static string Normalize(string key)
    {
        var host = key;
        var scheme = host.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            host = host[(scheme + 3)..];
        }

        var slash = host.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            host = host[..slash];
        }

        return host is "index.docker.io" or "registry-1.docker.io" ? ImageReference.DockerHub : host;
    }
}
