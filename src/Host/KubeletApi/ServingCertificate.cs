using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Krustlet.Stages;

namespace Krustlet.Host.KubeletApi;

/// <summary>The kubelet API's TLS certificate: the configured one, or a self-signed one kept in the data directory.</summary>
public static class ServingCertificate
{
    /// <summary>Where a generated certificate is kept, under the data directory.</summary>
    public static (string Cert, string Key) GeneratedPaths(string dataDirectory) =>
        (Path.Combine(dataDirectory, "pki", "kubelet.crt"), Path.Combine(dataDirectory, "pki", "kubelet.key"));

    /// <summary>Loads the configured certificate, or reuses or creates the generated one.</summary>
    /// <exception cref="InvalidOperationException">The configured files do not hold a certificate and its key.</exception>
    public static X509Certificate2 Load(KubeletServerOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        if (options.TlsCertFile is { } certFile && options.TlsKeyFile is { } keyFile)
        {
            try
            {
                return X509Certificate2.CreateFromPemFile(certFile, keyFile);
            }
            catch (CryptographicException ex)
            {
                throw new InvalidOperationException($"TlsCertFile {certFile} and TlsKeyFile {keyFile} do not hold a PEM certificate and its private key: {ex.Message}", ex);
            }
        }

        var (cert, key) = GeneratedPaths(options.DataDirectory!);
        var names = Names(options);
        if (File.Exists(cert) && File.Exists(key) && TryReuse(cert, key, names, time.GetUtcNow() + options.CertificateRenewBefore) is { } reused)
        {
            return reused;
        }

        return Generate(cert, key, names, time.GetUtcNow(), options.GeneratedCertificateLifetime);
    }

    private static (IReadOnlyList<string> Dns, IReadOnlyList<IPAddress> Ips) Names(KubeletServerOptions options)
    {
        List<string> dns = [options.NodeName];
        if (!string.Equals(options.NodeName, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            dns.Add("localhost");
        }

        List<IPAddress> ips = [IPAddress.Loopback];
        if (options.NodeIp is { } nodeIp && IPAddress.Parse(nodeIp) is var ip && !ip.Equals(IPAddress.Loopback))
        {
            ips.Insert(0, ip);
        }

        return (dns, ips);
    }

    /// <summary>The kept certificate when it still names this node and is valid past <paramref name="validUntil"/>.</summary>
    private static X509Certificate2? TryReuse(string certFile, string keyFile, (IReadOnlyList<string> Dns, IReadOnlyList<IPAddress> Ips) names, DateTimeOffset validUntil)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        }
        catch (CryptographicException)
        {
            return null; // unreadable: replace it
        }

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var fits = certificate.NotAfter.ToUniversalTime() > validUntil.UtcDateTime
            && san is not null
            && names.Dns.All(d => san.EnumerateDnsNames().Contains(d, StringComparer.OrdinalIgnoreCase))
            && names.Ips.All(ip => san.EnumerateIPAddresses().Contains(ip));
        if (fits)
        {
            return certificate;
        }

        certificate.Dispose();
        return null;
    }

    /// <summary>A subjectAltName extension naming these DNS names and IP addresses.</summary>
    internal static X509Extension SubjectAlternativeNames(IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses)
    {
        var san = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            san.AddDnsName(dns);
        }

        foreach (var ip in ipAddresses)
        {
            san.AddIpAddress(ip);
        }

        return san.Build();
    }

    private static X509Certificate2 Generate(string certFile, string keyFile, (IReadOnlyList<string> Dns, IReadOnlyList<IPAddress> Ips) names, DateTimeOffset now, TimeSpan lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={names.Dns[0]}@{now.ToUnixTimeSeconds()}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(SubjectAlternativeNames(names.Dns, names.Ips));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now + lifetime);

        PrivateDirectory.Create(Path.GetDirectoryName(certFile)!);
        WritePem(keyFile, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(certFile, certificate.ExportCertificatePem(), secret: false);
        return certificate;
    }

    /// <summary>Writes through a temporary file and a rename, so a crash never leaves half a file; the key is 0600 from its creation.</summary>
    internal static void WritePem(string path, string pem, bool secret)
    {
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = secret
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        File.Delete(temporary);
        using (var stream = new StreamWriter(temporary, System.Text.Encoding.ASCII, options))
        {
            stream.Write(pem);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
