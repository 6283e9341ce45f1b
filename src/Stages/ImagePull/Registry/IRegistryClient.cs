namespace Krustlet.Stages.ImagePull.Registry;

/// <summary>Credentials for one registry: a user name and password (or token as password).</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>Tells credentials apart without keeping them in the clear (a SHA-256 of user and password).</summary>
    public string Fingerprint => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{Username}\n{Password}")));

    public override string ToString() => $"{Username}:***";
}

/// <summary>A manifest as the registry served it.</summary>
/// <param name="MediaType">The Content-Type the registry answered with (or the manifest's own mediaType).</param>
/// <param name="Digest">The sha256 of <paramref name="Content"/>.</param>
/// <param name="Content">The manifest bytes.</param>
public sealed record ManifestResponse(string MediaType, string Digest, byte[] Content);

/// <summary>A registry said no, or could not be reached.</summary>
public sealed class RegistryException : Exception
{
    public RegistryException(string message, int? status = null, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
    }

    public RegistryException()
    {
    }

    public RegistryException(string message)
        : base(message)
    {
    }

    public RegistryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The HTTP status, when the registry answered.</summary>
    public int? Status { get; }
}

/// <summary>
/// The parts of the OCI distribution API the agent uses. Ours is written on HttpClient
/// (<see cref="OciRegistryClient"/>); the interface lets another client be swapped in.
/// </summary>
public interface IRegistryClient
{
    /// <summary>Gets a manifest by tag or digest from <paramref name="host"/>.</summary>
    Task<ManifestResponse> GetManifestAsync(string host, string repository, string reference, RegistryCredentials? credentials, CancellationToken cancellationToken);

    /// <summary>Opens a blob for streaming; the caller verifies and stores it.</summary>
    Task<Stream> OpenBlobAsync(string host, string repository, string digest, RegistryCredentials? credentials, CancellationToken cancellationToken);

    /// <summary>Uploads a blob unless the registry has it.</summary>
    Task PushBlobAsync(string host, string repository, string digest, Func<Stream> content, long length, RegistryCredentials? credentials, CancellationToken cancellationToken);

    /// <summary>Uploads a manifest under a tag or digest; returns its digest.</summary>
    Task<string> PushManifestAsync(string host, string repository, string reference, string mediaType, byte[] manifest, RegistryCredentials? credentials, CancellationToken cancellationToken);
}
