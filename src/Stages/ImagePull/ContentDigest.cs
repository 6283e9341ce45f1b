using System.Security.Cryptography;

namespace Krustlet.Stages.ImagePull;

/// <summary>OCI content digests: <c>sha256:</c> and the lowercase hex SHA-256 of the bytes.</summary>
public static class ContentDigest
{
    public static string Of(ReadOnlySpan<byte> content) => Format(SHA256.HashData(content));

    public static async Task<string> OfAsync(Stream content, CancellationToken cancellationToken) =>
        Format(await SHA256.HashDataAsync(content, cancellationToken));

    /// <summary>The digest for an already computed SHA-256 hash.</summary>
    public static string Format(byte[] sha256) => "sha256:" + Convert.ToHexStringLower(sha256);
}
