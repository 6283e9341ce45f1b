namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>
/// The caller of a kubelet API request as the API server's authenticators describe a user: a name, a
/// uid, groups and extra attributes. The SubjectAccessReview that authorizes the request carries them.
/// </summary>
/// <param name="Name">The user name: a client certificate's CN, a token's user, or <c>system:anonymous</c>.</param>
/// <param name="Groups">The user's groups: a client certificate's O values, a token's groups.</param>
/// <param name="Uid">The user's uid, when the authenticator knows one.</param>
/// <param name="Extra">Extra attributes a TokenReview returned.</param>
public sealed record KubeletUser(string Name, IReadOnlyList<string> Groups, string? Uid = null, IReadOnlyDictionary<string, IList<string>>? Extra = null)
{
    /// <summary>The group every authenticated user is in (never the anonymous user).</summary>
    public const string AuthenticatedGroup = "system:authenticated";

    /// <summary>The user a request without credentials is, when anonymous requests are enabled.</summary>
    public static KubeletUser Anonymous { get; } = new("system:anonymous", ["system:unauthenticated"]);

    /// <summary>This user with <see cref="AuthenticatedGroup"/> added, as the kubelet's authenticator adds it.</summary>
    public KubeletUser Authenticated() =>
        Groups.Contains(AuthenticatedGroup, StringComparer.Ordinal) ? this : this with { Groups = [.. Groups, AuthenticatedGroup] };
}

/// <summary>What authenticating a request found: the user, or why there is none.</summary>
/// <param name="User">The caller, or null when the request is refused.</param>
/// <param name="Problem">Why it is refused (empty when it is not).</param>
public sealed record Authentication(KubeletUser? User, string Problem)
{
    public static Authentication Of(KubeletUser user) => new(user, string.Empty);

    public static Authentication Refused(string problem) => new(null, problem);
}
