using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Krustlet.Tests.Shared;

/// <summary>
/// A cluster CA that issues the certificates of approved CertificateSigningRequests as
/// kube-controller-manager's signer does: the request's subject and SANs, key usages and extended key
/// usages from <c>spec.usages</c>, not a CA, valid from five minutes before now (backdated) for
/// <see cref="Duration"/> or the request's <c>spec.expirationSeconds</c>, on the test's clock.
/// </summary>
public sealed class ClusterSigner : IDisposable
{
    public ClusterSigner(TimeProvider time, string name = "test cluster CA")
    {
        Time = time;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = time.GetUtcNow();
        Ca = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The clock issued certificates' validity is counted on.</summary>
    public TimeProvider Time { get; }

    /// <summary>How long an issued certificate is valid (kube-controller-manager's <c>--cluster-signing-duration</c>, a year there).</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromDays(365);

    /// <summary>Certificates issued so far.</summary>
    public int Issued { get; private set; }

    /// <summary>The PEM certificate for a CertificateSigningRequest object.</summary>
    public string Sign(JsonObject csr)
    {
        ArgumentNullException.ThrowIfNull(csr);
        var spec = csr["spec"]!;
        var pem = Encoding.ASCII.GetString(Convert.FromBase64String(spec["request"]!.GetValue<string>()));
        var request = CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        var san = request.CertificateExtensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        request.CertificateExtensions.Clear();
        if (san is not null)
        {
            request.CertificateExtensions.Add(san);
        }

        var usages = spec["usages"]?.AsArray().Select(u => u!.GetValue<string>()).ToList() ?? [];
        var keyUsage = (usages.Contains("digital signature") ? X509KeyUsageFlags.DigitalSignature : X509KeyUsageFlags.None)
            | (usages.Contains("key encipherment") ? X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.None);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(keyUsage, true));
        var extended = new OidCollection();
        if (usages.Contains("client auth"))
        {
            extended.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }

        if (usages.Contains("server auth"))
        {
            extended.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(extended, false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var now = Time.GetUtcNow();
        var lifetime = spec["expirationSeconds"]?.GetValue<int>() is { } seconds ? TimeSpan.FromSeconds(seconds) : Duration;
        using var issued = request.Create(Ca, now.AddMinutes(-5), now + lifetime, RandomNumberGenerator.GetBytes(12));
        Issued++;
        return issued.ExportCertificatePem();
    }

    public void Dispose() => Ca.Dispose();
}
