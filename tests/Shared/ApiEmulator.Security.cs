using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Tests.Shared;

/// <summary>A rule the emulator's SubjectAccessReview allows by, as an RBAC rule: <c>*</c> matches anything.</summary>
/// <param name="Subject">A user name, or a group as <c>group:&lt;name&gt;</c>.</param>
/// <param name="Verb">The verb (get, create, ...).</param>
/// <param name="Resource">The resource (nodes).</param>
/// <param name="Subresource">The subresource (proxy, log, stats, metrics, spec).</param>
/// <param name="Name">The object's name (the node).</param>
public sealed record AccessRule(string Subject, string Verb = "*", string Resource = "*", string Subresource = "*", string Name = "*")
{
    public bool Matches(string user, IReadOnlyList<string> groups, JsonNode? attributes) =>
        (Subject == user || (Subject.StartsWith("group:", StringComparison.Ordinal) && groups.Contains(Subject["group:".Length..])))
        && Fits(Verb, attributes?["verb"]) && Fits(Resource, attributes?["resource"]) && Fits(Subresource, attributes?["subresource"]) && Fits(Name, attributes?["name"]);

    private static bool Fits(string pattern, JsonNode? value) => pattern == "*" || pattern == (value?.GetValue<string>() ?? string.Empty);
}

/// <summary>
/// The emulator's security APIs, with the real API's shapes: <c>authentication.k8s.io/v1</c> TokenReview
/// (tokens the test registers), <c>authorization.k8s.io/v1</c> SubjectAccessReview (decided by the
/// test's <see cref="AccessRule"/>s; no rule, no access), and <c>certificates.k8s.io/v1</c>
/// CertificateSigningRequests (create with generateName, get, list, watch, delete, the approval and
/// status subresources); the test approves (then a <see cref="ClusterSigner"/> issues the certificate)
/// or denies them, or lets <see cref="AutoSigner"/> approve and issue each one as it is created.
/// </summary>
public sealed partial class ApiEmulator
{
    public const string CsrResource = "certificatesigningrequests";

    private readonly Dictionary<string, (string User, string? Uid, string[] Groups)> _tokens = new(StringComparer.Ordinal);
    private readonly List<AccessRule> _rules = [];
    private readonly Dictionary<string, List<string>> _created = new(StringComparer.Ordinal);
    private readonly List<(string Resource, int Count, TaskCompletionSource<string> Reached)> _createdWaiters = [];

    /// <summary>The specs of the SubjectAccessReviews asked so far.</summary>
    public List<JsonObject> AccessReviews { get; } = [];

    /// <summary>When set, each new CertificateSigningRequest is approved and issued by this signer at once.</summary>
    public ClusterSigner? AutoSigner { get; set; }

    /// <summary>TokenReview vouches for <paramref name="token"/> as this user.</summary>
    public void AddToken(string token, string user, string[]? groups = null, string? uid = null)
    {
        lock (_lock)
        {
            _tokens[token] = (user, uid, groups ?? []);
        }
    }

    /// <summary>SubjectAccessReview allows what this rule matches.</summary>
    public void Allow(AccessRule rule)
    {
        lock (_lock)
        {
            _rules.Add(rule);
        }
    }

    /// <summary>Forgets every access rule: everything is denied from now on.</summary>
    public void ClearAccessRules()
    {
        lock (_lock)
        {
            _rules.Clear();
        }
    }

    /// <summary>The name of the <paramref name="count"/>th object of a resource created through the API (1-based), once it exists.</summary>
    public Task<string> WaitForCreatedAsync(string resource, int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_created.TryGetValue(resource, out var names) && names.Count >= count)
            {
                return Task.FromResult(names[count - 1]);
            }

            var reached = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _createdWaiters.Add((resource, count, reached));
            return reached.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Approves a CertificateSigningRequest (the Approved condition), then has <paramref name="signer"/> issue its certificate, as kube-controller-manager does.</summary>
    public void Approve(string csrName, ClusterSigner signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        lock (_lock)
        {
            var csr = _objects[(CsrResource, string.Empty, csrName)];
            AddCondition(csr, "Approved", "AutoApproved", "approved by the test", signer.Time);
            Record(CsrResource, "MODIFIED", (CsrResource, string.Empty, csrName), csr);
            csr["status"]!["certificate"] = Convert.ToBase64String(Encoding.ASCII.GetBytes(signer.Sign(csr)));
            Record(CsrResource, "MODIFIED", (CsrResource, string.Empty, csrName), csr);
        }
    }

    /// <summary>Denies a CertificateSigningRequest (the Denied condition with this reason and message).</summary>
    public void Deny(string csrName, string reason, string message)
    {
        lock (_lock)
        {
            var csr = _objects[(CsrResource, string.Empty, csrName)];
            AddCondition(csr, "Denied", reason, message, TimeProvider.System);
            Record(CsrResource, "MODIFIED", (CsrResource, string.Empty, csrName), csr);
        }
    }

    /// <summary>Creates an object posted by a client: stores it, tells the creation waiters, and for a CSR, lets the auto-signer decide.</summary>
    private JsonObject Create(string resource, JsonObject body)
    {
        lock (_lock)
        {
            if (resource == CsrResource)
            {
                body["status"] ??= new JsonObject();
            }

            var created = Put(resource, body);
            var name = created["metadata"]!["name"]!.GetValue<string>();
            if (!_created.TryGetValue(resource, out var names))
            {
                _created[resource] = names = [];
            }

            names.Add(name);
            foreach (var waiter in _createdWaiters.Where(w => w.Resource == resource && w.Count <= names.Count).ToList())
            {
                waiter.Reached.TrySetResult(names[waiter.Count - 1]);
                _createdWaiters.Remove(waiter);
            }

            var answer = created.DeepClone().AsObject(); // what the client gets back: the request as created, still pending
            if (resource == CsrResource && AutoSigner is { } signer)
            {
                Approve(name, signer);
            }

            return answer;
        }
    }

    /// <summary>Serves the security APIs; false when the path is not one of them.</summary>
    private async Task<bool> HandleSecurityAsync(HttpContext context, string[] segments)
    {
        var method = context.Request.Method;
        if (segments is ["apis", "authentication.k8s.io", "v1", "tokenreviews"] && method == "POST")
        {
            var review = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var token = review["spec"]?["token"]?.GetValue<string>() ?? string.Empty;
            JsonObject status;
            lock (_lock)
            {
                status = _tokens.TryGetValue(token, out var user)
                    ? new JsonObject
                    {
                        ["authenticated"] = true,
                        ["user"] = new JsonObject { ["username"] = user.User, ["uid"] = user.Uid, ["groups"] = new JsonArray([.. user.Groups.Select(g => (JsonNode)g)]) },
                    }
                    : new JsonObject { ["authenticated"] = false, ["error"] = "invalid bearer token" };
            }

            review["status"] = status;
            await WriteAsync(context, 201, review);
            return true;
        }

        if (segments is ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"] && method == "POST")
        {
            var review = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var spec = review["spec"];
            var user = spec?["user"]?.GetValue<string>() ?? string.Empty;
            IReadOnlyList<string> groups = [.. spec?["groups"]?.AsArray().Select(g => g!.GetValue<string>()) ?? []];
            int rule;
            lock (_lock)
            {
                AccessReviews.Add(spec?.DeepClone().AsObject() ?? []);
                rule = _rules.FindIndex(r => r.Matches(user, groups, spec?["resourceAttributes"]));
            }

            // As RBAC answers: allowed with the rule that allows it, or not allowed (no opinion) with no reason.
            review["status"] = rule >= 0
                ? new JsonObject { ["allowed"] = true, ["reason"] = $"allowed by rule {rule}: {_rules[rule]}" }
                : new JsonObject { ["allowed"] = false };
            await WriteAsync(context, 201, review);
            return true;
        }

        if (segments is ["apis", "certificates.k8s.io", "v1", CsrResource, ..])
        {
            var name = segments.Length > 4 ? segments[4] : null;
            var sub = segments.Length > 5 ? segments[5] : null;
            if (name is null && method == "GET")
            {
                await ListOrWatchAsync(context, CsrResource, null);
                return true;
            }

            await NamespacedAsync(context, CsrResource, string.Empty, name, sub);
            return true;
        }

        return false;
    }

    private static void AddCondition(JsonObject csr, string type, string reason, string message, TimeProvider time)
    {
        var status = csr["status"] as JsonObject ?? new JsonObject();
        csr["status"] = status;
        var conditions = status["conditions"] as JsonArray ?? [];
        status["conditions"] = conditions;
        var now = time.GetUtcNow().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        conditions.Add(new JsonObject { ["type"] = type, ["status"] = "True", ["reason"] = reason, ["message"] = message, ["lastUpdateTime"] = now, ["lastTransitionTime"] = now });
    }
}
