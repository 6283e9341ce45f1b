using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Certificates;

/// <summary>
/// Gets a certificate from the cluster as the kubelet does (client-go's <c>util/certificate/csr</c>): a
/// new ECDSA P-256 key, a CertificateSigningRequest for it (<c>generateName: csr-</c>), then a watch of
/// that request until it is approved and its certificate issued. A denied, failed, deleted or expired
/// request, or one not issued within <see cref="WaitTimeout"/>, is an error with the reason; <see
/// cref="RequestAsync"/> logs it and asks again with a fresh request after a backoff, never giving up.
/// </summary>
internal sealed partial class CertificateSigningRequester(IKubernetes client, TimeProvider time, ILogger logger)
{
    /// <summary>How long one request may wait for approval and issue (the kubelet's certificate manager waits 15 minutes).</summary>
    public TimeSpan WaitTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The first wait after a failed request; it doubles up to <see cref="MaxBackoff"/>, with 10 % jitter.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>A number in [0, 1) for the jitter.</summary>
    public Func<double> Random { get; init; } = System.Random.Shared.NextDouble;

    /// <summary>Requests until a certificate is issued (or <paramref name="cancellationToken"/> fires); each failure is logged with its reason.</summary>
    /// <returns>The certificate with its private key.</returns>
    public async Task<X509Certificate2> RequestAsync(CertificateProfile profile, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var backoff = InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            string problem;
            try
            {
                return await RequestOnceAsync(profile, cancellationToken);
            }
            catch (CertificateRequestException ex)
            {
                problem = ex.Message;
            }
            catch (Exception ex) when (ex is HttpRequestException or HttpOperationException or k8s.Exceptions.KubernetesClientException or KubernetesException && !cancellationToken.IsCancellationRequested)
            {
                problem = $"the API server could not be asked: {ex.Message}";
            }

            var delay = backoff * (1 + (0.1 * Random()));
            LogRequestFailed(logger, profile.Purpose, attempt, problem, delay);
            await Task.Delay(delay, time, cancellationToken);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>One request: create it, wait for its certificate.</summary>
    /// <exception cref="CertificateRequestException">Denied, failed, deleted, not issued in time, or issued unusable.</exception>
    public async Task<X509Certificate2> RequestOnceAsync(CertificateProfile profile, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(profile);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(profile.Subject(), key, HashAlgorithmName.SHA256);
        if (profile.DnsNames.Count > 0 || profile.IpAddresses.Count > 0)
        {
            request.CertificateExtensions.Add(KubeletApi.ServingCertificate.SubjectAlternativeNames(profile.DnsNames, profile.IpAddresses));
        }

        using var timeout = new CancellationTokenSource(WaitTimeout, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var created = await client.CertificatesV1.CreateCertificateSigningRequestAsync(
            new V1CertificateSigningRequest
            {
                ApiVersion = "certificates.k8s.io/v1",
                Kind = "CertificateSigningRequest",
                Metadata = new V1ObjectMeta { GenerateName = "csr-" },
                Spec = new V1CertificateSigningRequestSpec
                {
                    Request = Encoding.ASCII.GetBytes(request.CreateSigningRequestPem()),
                    SignerName = profile.SignerName,
                    Usages = [.. profile.Usages],
                },
            },
            cancellationToken: wait.Token);
        var name = created.Metadata.Name;
        LogCreated(logger, profile.Purpose, name, profile.SignerName);

        string issued;
        try
        {
            issued = await WaitAsync(created, wait.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new CertificateRequestException($"certificate signing request {name} was not approved and issued within {WaitTimeout}: is an approver (kubectl certificate approve {name}) and a signer for {profile.SignerName} running?");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(issued, key.ExportPkcs8PrivateKeyPem());
        }
        catch (CryptographicException ex)
        {
            throw new CertificateRequestException($"the certificate issued for {name} is not a certificate for the requested key: {ex.Message}", ex);
        }

        if (certificate.NotAfter.ToUniversalTime() <= time.GetUtcNow().UtcDateTime)
        {
            certificate.Dispose();
            throw new CertificateRequestException($"the certificate issued for {name} has already expired ({certificate.NotAfter:o})");
        }

        LogIssued(logger, profile.Purpose, name, certificate.NotAfter);
        return certificate;
    }

    /// <summary>Watches the request from its creation until it is issued; a watch that ends is resumed from a fresh read.</summary>
    private async Task<string> WaitAsync(V1CertificateSigningRequest created, CancellationToken cancellationToken)
    {
        var name = created.Metadata.Name;
        var uid = created.Metadata.Uid;
        var resourceVersion = created.Metadata.ResourceVersion;
        if (Issued(created) is { } early)
        {
            return early;
        }

        while (true)
        {
            await foreach (var (type, csr) in client.CertificatesV1.WatchListCertificateSigningRequestAsync(
                fieldSelector: $"metadata.name={name}",
                resourceVersion: resourceVersion,
                timeoutSeconds: 300,
                onError: _ => { }, // an ERROR event (e.g. 410 Gone) ends this watch; the request is read afresh below
                cancellationToken: cancellationToken))
            {
                if (type == WatchEventType.Bookmark)
                {
                    resourceVersion = csr.Metadata.ResourceVersion;
                    continue;
                }

                if (type == WatchEventType.Deleted || csr.Metadata.Uid != uid)
                {
                    throw Deleted(name);
                }

                resourceVersion = csr.Metadata.ResourceVersion;
                if (Issued(csr) is { } pem)
                {
                    return pem;
                }
            }

            V1CertificateSigningRequest current;
            try
            {
                current = await client.CertificatesV1.ReadCertificateSigningRequestAsync(name, cancellationToken: cancellationToken);
            }
            catch (HttpOperationException ex) when (ex.Response.StatusCode == HttpStatusCode.NotFound)
            {
                throw Deleted(name);
            }

            if (current.Metadata.Uid != uid)
            {
                throw Deleted(name);
            }

            if (Issued(current) is { } issued)
            {
                return issued;
            }

            resourceVersion = current.Metadata.ResourceVersion;
        }
    }

    private static CertificateRequestException Deleted(string name) =>
        new($"certificate signing request {name} was deleted before its certificate was issued (it expired, or someone removed it)");

    /// <summary>The issued certificate (PEM), null while pending; throws for a denied or failed request.</summary>
    private static string? Issued(V1CertificateSigningRequest csr)
    {
        var conditions = csr.Status?.Conditions ?? [];
        foreach (var condition in conditions.Where(c => c.Status == "True"))
        {
            if (condition.Type is "Denied" or "Failed")
            {
                throw new CertificateRequestException($"certificate signing request {csr.Metadata.Name} was {condition.Type.ToLowerInvariant()}: {condition.Reason}: {condition.Message}");
            }
        }

        return conditions.Any(c => c.Type == "Approved" && c.Status == "True") && csr.Status?.Certificate is { Length: > 0 } certificate
            ? Encoding.ASCII.GetString(certificate)
            : null;
    }

    [LoggerMessage(4100, LogLevel.Information, "Asked the cluster for the node's {Purpose} certificate: certificate signing request {Name} (signer {Signer}), waiting for approval")]
    private static partial void LogCreated(ILogger logger, string purpose, string name, string signer);

    [LoggerMessage(4101, LogLevel.Information, "The node's {Purpose} certificate was issued ({Name}), valid until {NotAfter:o}")]
    private static partial void LogIssued(ILogger logger, string purpose, string name, DateTime notAfter);

    [LoggerMessage(4102, LogLevel.Error, "The node's {Purpose} certificate was not obtained (attempt {Attempt}): {Problem}; asking again in {Delay}")]
    private static partial void LogRequestFailed(ILogger logger, string purpose, int attempt, string problem, TimeSpan delay);
}
