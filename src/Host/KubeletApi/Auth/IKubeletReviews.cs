using k8s;
using k8s.Models;

namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>The API server's reviews the kubelet API delegates to: TokenReview (who is this token) and SubjectAccessReview (may they).</summary>
public interface IKubeletReviews
{
    /// <summary>Asks <c>authentication.k8s.io/v1</c> TokenReview who a bearer token belongs to.</summary>
    Task<V1TokenReviewStatus> ReviewTokenAsync(string token, CancellationToken cancellationToken);

    /// <summary>Asks <c>authorization.k8s.io/v1</c> SubjectAccessReview whether a user may do something.</summary>
    Task<V1SubjectAccessReviewStatus> ReviewAccessAsync(V1SubjectAccessReviewSpec spec, CancellationToken cancellationToken);
}

/// <summary>The reviews, asked of the API server through the node's client.</summary>
public sealed class KubernetesReviews(IKubernetes client) : IKubeletReviews
{
    public async Task<V1TokenReviewStatus> ReviewTokenAsync(string token, CancellationToken cancellationToken)
    {
        var review = await client.AuthenticationV1.CreateTokenReviewAsync(
            new V1TokenReview { ApiVersion = "authentication.k8s.io/v1", Kind = "TokenReview", Spec = new V1TokenReviewSpec { Token = token } },
            cancellationToken: cancellationToken);
        return review.Status ?? new V1TokenReviewStatus { Authenticated = false, Error = "the TokenReview came back without a status" };
    }

    public async Task<V1SubjectAccessReviewStatus> ReviewAccessAsync(V1SubjectAccessReviewSpec spec, CancellationToken cancellationToken)
    {
        var review = await client.AuthorizationV1.CreateSubjectAccessReviewAsync(
            new V1SubjectAccessReview { ApiVersion = "authorization.k8s.io/v1", Kind = "SubjectAccessReview", Spec = spec },
            cancellationToken: cancellationToken);
        return review.Status ?? new V1SubjectAccessReviewStatus { Allowed = false, EvaluationError = "the SubjectAccessReview came back without a status" };
    }
}
