using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>
/// Who is calling, tried in the kubelet's order: a client certificate that chains to the client CA (user
/// = its CN, groups = its O values), a bearer token from the token file, a bearer token the API server
/// vouches for (TokenReview, cached for the webhook's TTL, both ways, as the kubelet caches it); then,
/// only when no credentials were presented at all and anonymous requests are enabled,
/// <c>system:anonymous</c>. Presented credentials that fail are refused even when anonymous requests
/// are enabled, as the kubelet refuses them.
/// </summary>
internal sealed partial class KubeletAuthenticator
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");
    private const string CommonNameOid = "2.5.4.3";
    private const string OrganizationOid = "2.5.4.10";

    private readonly X509Certificate2Collection _clientCas;
    private readonly (byte[] Token, KubeletUser User)[] _tokens;
    private readonly IKubeletReviews? _webhook;
    private readonly TimeSpan _webhookCacheTtl;
    private readonly ExpiringCache<Authentication> _reviewed;
    private readonly bool _anonymous;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private KubeletAuthenticator(X509Certificate2Collection clientCas, IEnumerable<(string Token, KubeletUser User)> tokens, IKubeletReviews? webhook, KubeletServerOptions options, TimeProvider time, ILogger logger)
    {
        _clientCas = clientCas;
        _tokens = [.. tokens.Select(t => (Encoding.UTF8.GetBytes(t.Token), t.User))];
        _webhook = webhook;
        _webhookCacheTtl = options.TokenWebhookCacheTtl;
        _reviewed = new ExpiringCache<Authentication>(time);
        _anonymous = options.AnonymousAuth;
        _time = time;
        _logger = logger;
    }

    /// <summary>Whether any request but <c>/healthz</c> can be accepted.</summary>
    public bool AcceptsAnyone => _clientCas.Count > 0 || _tokens.Length > 0 || _webhook is not null || _anonymous;

    /// <summary>The user of a bare token line in the token file (one without the API server's <c>token,user,uid,"groups"</c> columns).</summary>
    public const string StaticTokenUser = "system:krustlet:token-file";

    /// <param name="options">The client CA, the tokens, whether anonymous requests are enabled, the TokenReview cache's TTL.</param>
    /// <param name="webhook">Where tokens not in the token file are reviewed; null to accept only the token file's.</param>
    /// <param name="time">The clock for the TokenReview cache and for checking client certificates' validity.</param>
    /// <param name="logger">Where failed reviews are logged.</param>
    public static KubeletAuthenticator Create(KubeletServerOptions options, IKubeletReviews? webhook, TimeProvider time, ILogger logger)
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

        var tokens = new Dictionary<string, KubeletUser>(StringComparer.Ordinal);
        foreach (var token in options.BearerTokens)
        {
            tokens[token] = new KubeletUser(StaticTokenUser, []);
        }

        if (options.BearerTokenFile is { } tokenFile)
        {
            foreach (var line in File.ReadAllLines(tokenFile))
            {
                var entry = line.Trim();
                if (entry.Length > 0 && !entry.StartsWith('#'))
                {
                    var (token, user) = TokenLine(entry);
                    tokens[token] = user;
                }
            }
        }

        return new KubeletAuthenticator(cas, tokens.Select(t => (t.Key, t.Value)), webhook, options, time, logger);
    }

    /// <summary>
    /// A token file line: a bare token, or the API server's <c>--token-auth-file</c> columns
    /// <c>token,user,uid,"group1,group2"</c>.
    /// </summary>
    private static (string Token, KubeletUser User) TokenLine(string line)
    {
        var columns = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        foreach (var c in line)
        {
            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == ',' && !quoted)
            {
                columns.Add(current.ToString().Trim());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        columns.Add(current.ToString().Trim());
        if (columns.Count < 2 || columns[1].Length == 0)
        {
            return (columns[0], new KubeletUser(StaticTokenUser, []));
        }

        var groups = columns.Count > 3 ? columns[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
        return (columns[0], new KubeletUser(columns[1], groups, columns.Count > 2 && columns[2].Length > 0 ? columns[2] : null));
    }

    /// <summary>The caller, or why the request is refused.</summary>
    public async ValueTask<Authentication> AuthenticateAsync(HttpContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var header = context.Request.Headers.Authorization.ToString();
        if (context.Connection.ClientCertificate is { } certificate)
        {
            if (ChainsToClientCa(certificate))
            {
                return Authentication.Of(UserOf(certificate).Authenticated());
            }

            if (header.Length == 0)
            {
                return Authentication.Refused("the client certificate is not signed by a trusted client CA");
            }
        }

        if (header.Length == 0)
        {
            return _anonymous
                ? Authentication.Of(KubeletUser.Anonymous)
                : Authentication.Refused("no credentials: present a client certificate or an Authorization: Bearer token");
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Authentication.Refused("only Bearer tokens are accepted in the Authorization header");
        }

        var token = header["Bearer ".Length..].Trim();
        var presented = Encoding.UTF8.GetBytes(token);
        foreach (var (known, user) in _tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(known, presented))
            {
                return Authentication.Of(user.Authenticated());
            }
        }

        return _webhook is null || token.Length == 0
            ? Authentication.Refused("the bearer token is not valid")
            : await ReviewAsync(_webhook, token, cancellationToken);
    }

    private async ValueTask<Authentication> ReviewAsync(IKubeletReviews webhook, string token, CancellationToken cancellationToken)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        if (_reviewed.TryGet(key, out var cached))
        {
            return cached;
        }

        k8s.Models.V1TokenReviewStatus status;
        try
        {
            status = await webhook.ReviewTokenAsync(token, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or k8s.Autorest.HttpOperationException or k8s.Exceptions.KubernetesClientException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogReviewFailed(_logger, ex.Message);
            return Authentication.Refused($"the bearer token could not be reviewed by the API server: {ex.Message}");
        }

        var answer = status.Authenticated == true && status.User?.Username is { Length: > 0 } name
            ? Authentication.Of(new KubeletUser(name, [.. status.User.Groups ?? []], status.User.Uid, status.User.Extra?.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal)).Authenticated())
            : Authentication.Refused(string.IsNullOrEmpty(status.Error) ? "the bearer token is not valid" : $"the bearer token is not valid: {status.Error}");
        _reviewed.Set(key, answer, _webhookCacheTtl);
        return answer;
    }

    private static KubeletUser UserOf(X509Certificate2 certificate)
    {
        string? name = null;
        var groups = new List<string>();
        foreach (var part in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (part.HasMultipleElements)
            {
                continue;
            }

            switch (part.GetSingleElementType().Value)
            {
                case CommonNameOid:
                    name ??= part.GetSingleElementValue();
                    break;
                case OrganizationOid when part.GetSingleElementValue() is { } organization:
                    groups.Add(organization);
                    break;
            }
        }

        return new KubeletUser(name ?? certificate.Subject, groups);
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
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        return chain.Build(certificate);
    }

    [LoggerMessage(4011, LogLevel.Warning, "Kubelet API: a TokenReview failed, the request is refused: {Error}")]
    private static partial void LogReviewFailed(ILogger logger, string error);
}
