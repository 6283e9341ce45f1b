using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// Who is calling: a client certificate that chains to the client CA, or a configured bearer token.
/// There is no authorization beyond this: every authenticated caller may use every endpoint.
/// </summary>
internal sealed class KubeletAuthenticator
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2Collection _clientCas;
    private readonly byte[][] _tokens;

    private KubeletAuthenticator(X509Certificate2Collection clientCas, IEnumerable<string> tokens)
    {
        _clientCas = clientCas;
        _tokens = [.. tokens.Select(Encoding.UTF8.GetBytes)];
    }

    /// <summary>Whether any way to authenticate is configured.</summary>
    public bool AcceptsAnyone => _clientCas.Count > 0 || _tokens.Length > 0;

    public static KubeletAuthenticator Create(KubeletServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cas = new X509Certificate2Collection();
        if (options.ClientCaFile is { } caFile)
        {
            try
            {
                cas.ImportFromPemFile(caFile);
            }
            catch (CryptographicException ex)
            {
                throw new InvalidOperationException($"ClientCaFile {caFile} is not a PEM certificate bundle: {ex.Message}", ex);
            }

            if (cas.Count == 0)
            {
                throw new InvalidOperationException($"ClientCaFile {caFile} holds no certificate.");
            }
        }

        var tokens = new HashSet<string>(options.BearerTokens, StringComparer.Ordinal);
        if (options.BearerTokenFile is { } tokenFile)
        {
            foreach (var line in File.ReadAllLines(tokenFile))
            {
                var token = line.Trim();
                if (token.Length > 0 && !token.StartsWith('#'))
                {
                    tokens.Add(token);
                }
            }
        }

        return new KubeletAuthenticator(cas, tokens);
    }

    /// <summary>The caller's name (certificate subject, or <c>bearer token</c>), or null with why not.</summary>
    public (string? User, string Problem) Authenticate(HttpContext context)
    {
        if (context.Connection.ClientCertificate is { } certificate)
        {
            if (ChainsToClientCa(certificate))
            {
                return (certificate.GetNameInfo(X509NameType.SimpleName, false), string.Empty);
            }

            if (context.Request.Headers.Authorization.Count == 0)
            {
                return (null, "the client certificate is not signed by a trusted client CA");
            }
        }

        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return (null, "no credentials: present a client certificate or an Authorization: Bearer token");
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (null, "only Bearer tokens are accepted in the Authorization header");
        }

        var presented = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        return _tokens.Any(t => CryptographicOperations.FixedTimeEquals(t, presented))
            ? ("bearer token", string.Empty)
            : (null, "the bearer token is not valid");
    }

    private bool ChainsToClientCa(X509Certificate2 certificate)
    {
        if (_clientCas.Count == 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_clientCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
        return chain.Build(certificate);
    }
}
