using System.Security.Cryptography.X509Certificates;
using k8s;
using Krustlet.Host.Configuration;
using Krustlet.Host.KubeletApi;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Certificates;

/// <summary>
/// The certificates a bootstrapped node keeps fresh while it runs: its client certificate (when the
/// kubeconfig uses the one in the certificate directory) and, unless <c>--tls-cert-file</c> is given,
/// the kubelet API's serving certificate from the <c>kubernetes.io/kubelet-serving</c> signer. Until the
/// first serving certificate is issued the API keeps presenting its self-signed one; each new one is
/// swapped in for new connections only.
/// </summary>
internal static class NodeCertificates
{
    /// <summary>Runs until <paramref name="cancellationToken"/> fires; failed requests are retried with backoff inside.</summary>
    public static async Task RunAsync(AgentSettings settings, IKubernetes client, RotatingCertificate? clientCertificate, KubeletServer server, TextWriter output, TimeProvider time, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var requester = new CertificateSigningRequester(client, time, loggerFactory.CreateLogger<CertificateSigningRequester>());
        var rotations = new List<Task>();
        if (clientCertificate is not null)
        {
            rotations.Add(clientCertificate.RotateAsync(requester, cancellationToken));
        }

        if (settings.TlsCertFile is null)
        {
            var serving = new RotatingCertificate(CertificateProfile.Serving(settings.NodeName, settings.NodeIp), settings.PkiDirectory, time, loggerFactory.CreateLogger<RotatingCertificate>());
            void Use(string path)
            {
                var certificate = X509Certificate2.CreateFromPemFile(path);
                server.UseCertificate(certificate);
                output.WriteLine($"kubelet API serving certificate signed by the cluster: {certificate.Subject}, valid until {certificate.NotAfter.ToUniversalTime():o}");
            }

            serving.Renewed += (_, path) => Use(path);
            if (serving.LoadValid() is { } kept)
            {
                kept.Dispose();
                Use(serving.Path);
            }

            rotations.Add(serving.RotateAsync(requester, cancellationToken));
        }

        try
        {
            await Task.WhenAll(rotations);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The node is stopping.
        }
    }
}
