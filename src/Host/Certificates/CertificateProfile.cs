using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Krustlet.Host.Certificates;

/// <summary>
/// A certificate the node asks the cluster for, as the kubelet asks: its signer, subject, usages and
/// SANs, and the file under the certificate directory it is kept in (certificate chain and key, PEM).
/// </summary>
/// <param name="Purpose">What it is for, in logs: <c>client</c> or <c>serving</c>.</param>
/// <param name="SignerName">The CertificateSigningRequest's <c>spec.signerName</c>.</param>
/// <param name="CommonName">The subject's CN: <c>system:node:&lt;name&gt;</c>.</param>
/// <param name="Organization">The subject's O: <c>system:nodes</c>.</param>
/// <param name="Usages">The request's <c>spec.usages</c>.</param>
/// <param name="DnsNames">DNS SANs (serving: the node's hostname).</param>
/// <param name="IpAddresses">IP SANs (serving: the node's IPs).</param>
/// <param name="FileName">The file under the certificate directory, as the kubelet names it.</param>
public sealed record CertificateProfile(string Purpose, string SignerName, string CommonName, string Organization, IReadOnlyList<string> Usages, IReadOnlyList<string> DnsNames, IReadOnlyList<IPAddress> IpAddresses, string FileName)
{
    /// <summary>The signer of kubelet client certificates.</summary>
    public const string ClientSigner = "kubernetes.io/kube-apiserver-client-kubelet";

    /// <summary>The signer of kubelet serving certificates.</summary>
    public const string ServingSigner = "kubernetes.io/kubelet-serving";

    /// <summary>The node's client certificate (ECDSA key: digital signature and client auth, as the kubelet asks).</summary>
    public static CertificateProfile Client(string nodeName) =>
        new("client", ClientSigner, $"system:node:{nodeName}", "system:nodes", ["digital signature", "client auth"], [], [], "kubelet-client-current.pem");

    /// <summary>The kubelet API's serving certificate, naming the node's hostname and IP as its addresses do.</summary>
    public static CertificateProfile Serving(string nodeName, string nodeIp) =>
        new("serving", ServingSigner, $"system:node:{nodeName}", "system:nodes", ["digital signature", "server auth"], [nodeName], [IPAddress.Parse(nodeIp)], "kubelet-server-current.pem");

    /// <summary>The subject, as <c>O=system:nodes, CN=system:node:&lt;name&gt;</c>.</summary>
    public X500DistinguishedName Subject()
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddOrganizationName(Organization);
        subject.AddCommonName(CommonName);
        return subject.Build();
    }

    /// <summary>Whether a kept certificate was made for this profile: same subject and every SAN it should name.</summary>
    public bool Fits(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (certificate.GetNameInfo(X509NameType.SimpleName, false) != CommonName)
        {
            return false;
        }

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        return (DnsNames.Count == 0 && IpAddresses.Count == 0)
            || (san is not null
                && DnsNames.All(d => san.EnumerateDnsNames().Contains(d, StringComparer.OrdinalIgnoreCase))
                && IpAddresses.All(ip => san.EnumerateIPAddresses().Contains(ip)));
    }
}
