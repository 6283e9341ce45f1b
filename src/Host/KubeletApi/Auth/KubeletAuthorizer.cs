using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>How the kubelet API authorizes authenticated requests (the kubelet's <c>--authorization-mode</c>).</summary>
public enum KubeletAuthorizationMode
{
    /// <summary>Every authenticated request is allowed.</summary>
    AlwaysAllow,

    /// <summary>Each request is asked of the API server with a SubjectAccessReview.</summary>
    Webhook,
}

/// <summary>The outcome of authorizing a request.</summary>
public enum AuthorizationOutcome
{
    Allowed,
    Denied,

    /// <summary>The authorizer could not decide (the API server did not answer, or answered with an evaluation error).</summary>
    Error,
}

/// <summary>An authorization decision and the reason the authorizer gave.</summary>
public sealed record AuthorizationDecision(AuthorizationOutcome Outcome, string Reason)
{
    public static AuthorizationDecision Allow { get; } = new(AuthorizationOutcome.Allowed, string.Empty);
}

/// <summary>
/// Authorizes kubelet API requests: everything (<see cref="KubeletAuthorizationMode.AlwaysAllow"/>), or
/// by SubjectAccessReview (<see cref="KubeletAuthorizationMode.Webhook"/>), caching allowed answers for
/// <c>authorizedTtl</c> and denied ones for <c>unauthorizedTtl</c> as the kubelet does. Errors are not cached.
/// </summary>
internal sealed partial class KubeletAuthorizer
{
    private readonly IKubeletReviews? _reviews;
    private readonly TimeSpan _authorizedTtl;
    private readonly TimeSpan _unauthorizedTtl;
    private readonly ExpiringCache<AuthorizationDecision>? _cache;
    private readonly ILogger _logger;

    private KubeletAuthorizer(IKubeletReviews? reviews, TimeSpan authorizedTtl, TimeSpan unauthorizedTtl, TimeProvider time, ILogger logger)
    {
        _reviews = reviews;
        _authorizedTtl = authorizedTtl;
        _unauthorizedTtl = unauthorizedTtl;
        _cache = reviews is null ? null : new ExpiringCache<AuthorizationDecision>(time);
        _logger = logger;
    }

    public static KubeletAuthorizer AlwaysAllow(ILogger logger) => new(null, TimeSpan.Zero, TimeSpan.Zero, TimeProvider.System, logger);

    public static KubeletAuthorizer Webhook(IKubeletReviews reviews, TimeSpan authorizedTtl, TimeSpan unauthorizedTtl, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(reviews);
        return new(reviews, authorizedTtl, unauthorizedTtl, time, logger);
    }

    public async ValueTask<AuthorizationDecision> AuthorizeAsync(KubeletUser user, KubeletRequestAttributes attributes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(attributes);
        if (_reviews is null || _cache is null)
        {
            return AuthorizationDecision.Allow;
        }

        var spec = new V1SubjectAccessReviewSpec
        {
            User = user.Name,
            Uid = user.Uid,
            Groups = [.. user.Groups],
            Extra = user.Extra is null ? null : new Dictionary<string, IList<string>>(user.Extra, StringComparer.Ordinal),
            ResourceAttributes = attributes.ToResourceAttributes(),
        };
        var key = KubernetesJson.Serialize(spec);
        if (_cache.TryGet(key, out var cached))
        {
            return cached;
        }

        V1SubjectAccessReviewStatus status;
        try
        {
            status = await _reviews.ReviewAccessAsync(spec, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or k8s.Autorest.HttpOperationException or k8s.Exceptions.KubernetesClientException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogReviewFailed(_logger, user.Name, attributes.Verb, attributes.Subresource, ex.Message);
            return new AuthorizationDecision(AuthorizationOutcome.Error, ex.Message);
        }

        AuthorizationDecision decision;
        if (status.Allowed)
        {
            decision = new AuthorizationDecision(AuthorizationOutcome.Allowed, status.Reason ?? string.Empty);
            _cache.Set(key, decision, _authorizedTtl);
        }
        else if (status.Denied != true && !string.IsNullOrEmpty(status.EvaluationError))
        {
            // No opinion because the API server could not evaluate the request: an error, not a denial.
            decision = new AuthorizationDecision(AuthorizationOutcome.Error, status.EvaluationError);
        }
        else
        {
            // Denied, or no opinion: the webhook is the only authorizer, so no opinion denies.
            decision = new AuthorizationDecision(AuthorizationOutcome.Denied, status.Reason ?? string.Empty);
            _cache.Set(key, decision, _unauthorizedTtl);
        }

        return decision;
    }

    [LoggerMessage(4010, LogLevel.Warning, "Kubelet API: the SubjectAccessReview for {User} ({Verb} nodes/{Subresource}) failed: {Error}")]
    private static partial void LogReviewFailed(ILogger logger, string user, string verb, string subresource, string error);
}
