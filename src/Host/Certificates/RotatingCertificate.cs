using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Krustlet.Host.KubeletApi;
using Krustlet.Stages;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Certificates;

/// <summary>
/// One certificate the node holds from the cluster (its client or its serving certificate), kept as
/// chain and key in one PEM file under the certificate directory, as the kubelet's
/// <c>kubelet-client-current.pem</c>, and renewed before it expires: at a point drawn between 70 % and
/// 90 % of its lifetime, as client-go's certificate manager rotates.
/// </summary>
internal sealed partial class RotatingCertificate
{
    /// <summary>The longest single wait on the clock (a timer cannot wait a year); the deadline is checked again after it.</summary>
    private static readonly TimeSpan LongestWait = TimeSpan.FromDays(1);

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<double> _random;

    /// <param name="profile">What to ask for.</param>
    /// <param name="directory">The certificate directory (<c>&lt;DataDir&gt;/pki</c>).</param>
    /// <param name="time">The clock for validity and rotation.</param>
    /// <param name="logger">Where rotations are logged.</param>
    /// <param name="random">A number in [0, 1) that places the rotation within 70–90 % of the lifetime.</param>
    public RotatingCertificate(CertificateProfile profile, string directory, TimeProvider time, ILogger logger, Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        Profile = profile;
        Path = System.IO.Path.Combine(directory, profile.FileName);
        _time = time;
        _logger = logger;
        _random = random ?? Random.Shared.NextDouble;
    }

    public CertificateProfile Profile { get; }

    /// <summary>The PEM file: the certificate chain, then the private key.</summary>
    public string Path { get; }

    /// <summary>Raised with the file's path each time a new certificate has been written (the receiver loads its own copy).</summary>
    public event EventHandler<string>? Renewed;

    /// <summary>The kept certificate when it exists, is readable, was made for this profile and has not expired; else null.</summary>
    public X509Certificate2? LoadValid()
    {
        if (!File.Exists(Path))
        {
            return null;
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(Path);
        }
        catch (CryptographicException)
        {
            return null; // unreadable: ask for a new one
        }

        if (certificate.NotAfter.ToUniversalTime() > _time.GetUtcNow().UtcDateTime && certificate.HasPrivateKey && Profile.Fits(certificate))
        {
            return certificate;
        }

        certificate.Dispose();
        return null;
    }

    /// <summary>When this certificate should be renewed: its start plus 70–90 % of its lifetime.</summary>
    public DateTimeOffset RotationDeadline(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var notBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime());
        var lifetime = certificate.NotAfter.ToUniversalTime() - certificate.NotBefore.ToUniversalTime();
        return notBefore + (lifetime * (0.7 + (0.2 * _random())));
    }

    /// <summary>Asks until a certificate is issued, writes it (key 0600, through a rename) and raises <see cref="Renewed"/>.</summary>
    /// <returns>The issued certificate; the caller owns it.</returns>
    public async Task<X509Certificate2> ObtainAsync(CertificateSigningRequester requester, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requester);
        var certificate = await requester.RequestAsync(Profile, cancellationToken);
        using var key = certificate.GetECDsaPrivateKey()!;
        PrivateDirectory.Create(System.IO.Path.GetDirectoryName(Path)!);
        ServingCertificate.WritePem(Path, certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
        Renewed?.Invoke(this, Path);
        return certificate;
    }

    /// <summary>
    /// Until <paramref name="cancellationToken"/> fires: waits for the kept certificate's rotation
    /// deadline (at once when there is none, or it has expired), then obtains a new one. Failures are
    /// retried by the requester with backoff; nothing here ends the loop but cancellation.
    /// </summary>
    public async Task RotateAsync(CertificateSigningRequester requester, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requester);
        while (!cancellationToken.IsCancellationRequested)
        {
            using (var current = LoadValid())
            {
                if (current is not null)
                {
                    var deadline = RotationDeadline(current);
                    LogNextRotation(_logger, Profile.Purpose, deadline, current.NotAfter);
                    for (var now = _time.GetUtcNow(); now < deadline; now = _time.GetUtcNow())
                    {
                        var wait = deadline - now;
                        await Task.Delay(wait < LongestWait ? wait : LongestWait, _time, cancellationToken);
                    }
                }
            }

            LogRotating(_logger, Profile.Purpose);
            (await ObtainAsync(requester, cancellationToken)).Dispose();
        }
    }

    [LoggerMessage(4110, LogLevel.Information, "The node's {Purpose} certificate will be renewed at {Deadline:o} (it expires at {NotAfter:o})")]
    private static partial void LogNextRotation(ILogger logger, string purpose, DateTimeOffset deadline, DateTime notAfter);

    [LoggerMessage(4111, LogLevel.Information, "Renewing the node's {Purpose} certificate")]
    private static partial void LogRotating(ILogger logger, string purpose);
}
