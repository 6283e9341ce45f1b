using System.Security.Cryptography;

namespace Krustlet.Stages.ImagePull;

/// <summary>OCI content digests: <c>sha256:</c> and the lowercase hex SHA-256 of the bytes.</summary>
public static class ContentDigest
{
    public static string Of(ReadOnlySpan<byte> content) => Format(SHA256.HashData(content));

    public static async Task<string> OfAsync(Stream content, CancellationToken cancellationToken) =>
        Format(await SHA256.HashDataAsync(content, cancellationToken));

    /// <summary>The hex part of a <c>sha256:</c> digest, which names its blob file; throws for any other form.</summary>
    /// <exception cref="BlobVerificationException">Not <c>sha256:</c> and 64 lowercase hex digits.</exception>
    public static string Hex(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        if (!digest.StartsWith("sha256:", StringComparison.Ordinal) || digest.Length != 71 || !digest[7..].All(char.IsAsciiHexDigitLower))
        {
            throw new BlobVerificationException($"unsupported digest \"{digest}\" (expected sha256: and 64 lowercase hex digits)");
        }

        return digest[7..];
    }

    /// <summary>The digest for an already computed SHA-256 hash.</summary>
    public static string Format(byte[] sha256) => "sha256:" + Convert.ToHexStringLower(sha256);
}
