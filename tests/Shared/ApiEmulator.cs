using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Krustlet.Tests.Shared;

/// <summary>
/// A Kubernetes API emulator for tests: an HTTP server on 127.0.0.1 speaking the wire protocol
/// KubernetesClient speaks (JSON objects and lists, chunked watch streams of one event per line,
/// resourceVersions, bookmarks, 410 Gone for compacted versions as an ERROR event, Status errors),
/// for pods (with pods/status), configmaps, secrets and serviceaccounts/token. Faults can be injected:
/// cut every watch, answer the next matching request with an error, compact the event history.
/// TokenReview, SubjectAccessReview and CertificateSigningRequests are in <c>ApiEmulator.Security.cs</c>.
/// </summary>
public sealed partial class ApiEmulator : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Resource, string Namespace, string Name), JsonObject> _objects = [];
    private readonly List<(long Version, string Resource, string Type, JsonObject Object)> _history = [];
    private readonly List<Watcher> _watchers = [];
    private readonly List<(string Method, string PathContains, int Status, int Remaining)> _faults = [];
    private readonly WebApplication _app;
    private readonly List<(int Count, TaskCompletionSource Reached)> _watchWaiters = [];
    private readonly List<(string Resource, string Namespace, string Name, Func<JsonObject, bool> Match, TaskCompletionSource Seen)> _objectWaiters = [];
    private long _version = 100;
    private int _watchesOpened;
    private int _linesWritten;

    /// <summary>Watch event lines written to clients so far.</summary>
    public int LinesWritten => Volatile.Read(ref _linesWritten);

    /// <summary>Watches open now.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_lock)
            {
                return _watchers.Count;
            }
        }
    }
    private long _compactedThrough;

    private ApiEmulator(WebApplication app)
    {
        _app = app;
    }

    /// <summary>http://127.0.0.1:port</summary>
    public string Url { get; private set; } = string.Empty;

    /// <summary>Added before answering every request (a slow API server).</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Requests received, as "METHOD path?query".</summary>
    public List<string> Requests { get; } = [];

    /// <summary>When each of <see cref="Requests"/> arrived (Stopwatch timestamps), in the same order.</summary>
    public List<long> RequestTimes { get; } = [];

    private List<(string Pod, string? Phase)> PodPhases { get; } = [];

    /// <summary>Every pod status written through <c>pods/status</c>, in order: "namespace/name" and the phase it then had.</summary>
    public (string Pod, string? Phase)[] PodPhaseHistory()
    {
        lock (_lock)
        {
            return [.. PodPhases];
        }
    }

    /// <summary>Every request so far with the Stopwatch timestamp it arrived at.</summary>
    public (string Request, long At)[] RequestLog()
    {
        lock (_lock)
        {
            return [.. Requests.Zip(RequestTimes)];
        }
    }

    public static async Task<ApiEmulator> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var emulator = new ApiEmulator(app);
        app.Run(emulator.HandleAsync);
        await app.StartAsync(cancellationToken);
        emulator.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return emulator;
    }

    public async ValueTask DisposeAsync()
    {
        CutWatches();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Creates or replaces an object as a client would (the server sets uid, resourceVersion, creationTimestamp).</summary>
    public JsonObject Put(string resource, JsonObject obj)
    {
        lock (_lock)
        {
            var meta = obj["metadata"]!.AsObject();
            var key = (resource, meta["namespace"]?.GetValue<string>() ?? string.Empty, meta["name"]!.GetValue<string>());
            var exists = _objects.ContainsKey(key);
            meta["uid"] ??= Guid.NewGuid().ToString();
            meta["creationTimestamp"] ??= DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            Record(resource, exists ? "MODIFIED" : "ADDED", key, obj);
            return obj;
        }
    }

    /// <summary>Changes a stored object in place (a client's update of its spec or labels; its status stays), a MODIFIED event.</summary>
    public bool Update(string resource, string ns, string name, Action<JsonObject> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_lock)
        {
            if (!_objects.TryGetValue((resource, ns, name), out var stored))
            {
                return false;
            }

            change(stored);
            Record(resource, "MODIFIED", (resource, ns, name), stored);
            return true;
        }
    }

    public JsonObject? Get(string resource, string ns, string name)
    {
        lock (_lock)
        {
            return _objects.GetValueOrDefault((resource, ns, name))?.DeepClone().AsObject();
        }
    }

    /// <summary>Completes once the object exists in a state that <paramref name="match"/> accepts (a gate for tests).</summary>
    public Task WaitForAsync(string resource, string ns, string name, Func<JsonObject, bool> match, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_objects.TryGetValue((resource, ns, name), out var current) && match(current))
            {
                return Task.CompletedTask;
            }

            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _objectWaiters.Add((resource, ns, name, match, seen));
            return seen.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Writes a kubeconfig that points KubernetesClient at this emulator with a bearer token; returns its path.</summary>
    public string WriteKubeconfig(string path)
    {
        File.WriteAllText(path, string.Join('\n',
            "apiVersion: v1",
            "kind: Config",
            $"clusters: [{{name: emulator, cluster: {{server: \"{Url}\"}}}}]",
            "users: [{name: tester, user: {token: test-token}}]",
            "contexts: [{name: test, context: {cluster: emulator, user: tester}}]",
            "current-context: test"));
        return path;
    }

    /// <summary>Every stored object of a resource.</summary>
    public IReadOnlyList<JsonObject> All(string resource)
    {
        lock (_lock)
        {
            return [.. _objects.Where(p => p.Key.Resource == resource).Select(p => p.Value.DeepClone().AsObject())];
        }
    }

    /// <summary>Removes an object outright (a DELETED event), as the API server does once graceful deletion ends.</summary>
    public bool Remove(string resource, string ns, string name)
    {
        lock (_lock)
        {
            if (!_objects.TryGetValue((resource, ns, name), out var obj))
            {
                return false;
            }

            _objects.Remove((resource, ns, name));
            Bump(obj);
            Publish(resource, "DELETED", obj);
            return true;
        }
    }

    /// <summary>Completes once <paramref name="count"/> watch requests have been registered in all (a gate for tests).</summary>
    public Task WatchesOpened(int count)
    {
        lock (_lock)
        {
            if (_watchesOpened >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _watchWaiters.Add((count, reached));
            return reached.Task;
        }
    }

    /// <summary>Ends every open watch response, as a dropped connection would.</summary>
    public void CutWatches()
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Lines.Writer.TryComplete();
            }

            _watchers.Clear();
        }
    }

    /// <summary>
    /// Removes an object without telling open watches, as if the event were lost to compaction while a
    /// watch lagged; pair with <see cref="ExpireWatches"/>.
    /// </summary>
    public void RemoveUnseen(string resource, string ns, string name)
    {
        lock (_lock)
        {
            _objects.Remove((resource, ns, name));
            _version++;
        }
    }

    /// <summary>
    /// Compacts history and tells every open watch its resourceVersion is too old (an ERROR event with a
    /// 410 Status, then the end of the response), as the API server does to a watch that fell behind.
    /// </summary>
    public void ExpireWatches()
    {
        lock (_lock)
        {
            _compactedThrough = _version;
            _history.Clear();
            foreach (var watcher in _watchers)
            {
                watcher.Lines.Writer.TryWrite(Line("ERROR", Status(410, "Expired", $"too old resource version: the watch fell behind ({_compactedThrough})")));
                watcher.Lines.Writer.TryComplete();
            }

            _watchers.Clear();
        }
    }

    /// <summary>Forgets history: a watch from a version before now gets 410 Gone.</summary>
    public void Compact()
    {
        lock (_lock)
        {
            _compactedThrough = _version;
            _history.Clear();
        }
    }

    /// <summary>Sends a BOOKMARK with the current version to watches that asked for bookmarks.</summary>
    public void SendBookmarks()
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers.Where(w => w.Bookmarks))
            {
                watcher.Lines.Writer.TryWrite(Line("BOOKMARK", new JsonObject { ["kind"] = "Pod", ["apiVersion"] = "v1", ["metadata"] = new JsonObject { ["resourceVersion"] = _version.ToString(CultureInfo.InvariantCulture) } }));
            }
        }
    }

    /// <summary>Injected faults not yet answered, by status code.</summary>
    public int FaultsLeft(int status)
    {
        lock (_lock)
        {
            return _faults.Where(f => f.Status == status).Sum(f => f.Remaining);
        }
    }

    /// <summary>The next <paramref name="count"/> requests with this method whose path and query contain <paramref name="pathContains"/> get <paramref name="status"/>.</summary>
    public void Fail(string method, string pathContains, int status, int count = 1)
    {
        lock (_lock)
        {
            _faults.Add((method, pathContains, status, count));
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        int? injected = null;
        lock (_lock)
        {
            Requests.Add($"{request.Method} {path}{request.QueryString}");
            RequestTimes.Add(System.Diagnostics.Stopwatch.GetTimestamp());
            var target = $"{path}{request.QueryString}";
            var fault = _faults.FindIndex(f => f.Method == request.Method && target.Contains(f.PathContains, StringComparison.Ordinal));
            if (fault >= 0)
            {
                var (method, contains, status, remaining) = _faults[fault];
                if (remaining <= 1)
                {
                    _faults.RemoveAt(fault);
                }
                else
                {
                    _faults[fault] = (method, contains, status, remaining - 1);
                }

                injected = status;
            }
        }

        if (Latency > TimeSpan.Zero)
        {
            await Task.Delay(Latency, context.RequestAborted);
        }

        if (injected is { } code)
        {
            if (code == 429)
            {
                context.Response.Headers.RetryAfter = "1";
            }

            await WriteAsync(context, code, Status(code, code == 429 ? "TooManyRequests" : "InternalError", "injected fault"));
            return;
        }

        var segments = path.Trim('/').Split('/');
        if (await HandleSecurityAsync(context, segments))
        {
            return;
        }

        // /api/v1/pods | /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] | /api/v1/nodes[/{name}[/status]]
        // | /apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]
        if (segments.Length == 3 && segments[0] == "api" && segments[2] == "pods")
        {
            await ListOrWatchAsync(context, "pods", null);
            return;
        }

        if (segments.Length >= 3 && segments[0] == "api" && segments[2] == "nodes")
        {
            await NamespacedAsync(context, "nodes", string.Empty, segments.Length > 3 ? segments[3] : null, segments.Length > 4 ? segments[4] : null);
            return;
        }

        if (segments.Length >= 6 && segments[0] == "apis" && segments[1] == "coordination.k8s.io" && segments[3] == "namespaces" && segments[5] == "leases")
        {
            await NamespacedAsync(context, "leases", segments[4], segments.Length > 6 ? segments[6] : null, null);
            return;
        }

        if (segments.Length >= 5 && segments[0] == "api" && segments[2] == "namespaces")
        {
            var ns = segments[3];
            var resource = segments[4];
            var name = segments.Length > 5 ? segments[5] : null;
            var sub = segments.Length > 6 ? segments[6] : null;
            await NamespacedAsync(context, resource, ns, name, sub);
            return;
        }

        await WriteAsync(context, 404, Status(404, "NotFound", $"the server could not find the requested resource {path}"));
    }

    private async Task NamespacedAsync(HttpContext context, string resource, string ns, string? name, string? sub)
    {
        var method = context.Request.Method;
        if (name is null)
        {
            if (method == "GET")
            {
                await ListOrWatchAsync(context, resource, ns);
                return;
            }

            if (method == "POST")
            {
                var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
                if (ns.Length > 0)
                {
                    body["metadata"]!.AsObject()["namespace"] = ns;
                }

                var meta = body["metadata"]!.AsObject();
                if (meta["name"] is null && meta["generateName"]?.GetValue<string>() is { } prefix)
                {
                    meta["name"] = prefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3))[..5];
                }

                var created = meta["name"]!.GetValue<string>();
                if (Get(resource, ns, created) is not null)
                {
                    await WriteAsync(context, 409, Status(409, "AlreadyExists", $"{resource} \"{created}\" already exists", created, resource));
                    return;
                }

                await WriteAsync(context, 201, Create(resource, body));
                return;
            }
        }
        else if (resource == "serviceaccounts" && sub == "token" && method == "POST")
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var audience = body["spec"]?["audiences"]?[0]?.GetValue<string>() ?? "api";
            body["status"] = new JsonObject { ["token"] = $"token:{ns}:{name}:{audience}", ["expirationTimestamp"] = DateTimeOffset.UtcNow.AddHours(1).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) };
            await WriteAsync(context, 201, body);
            return;
        }
        else
        {
            JsonObject? current;
            lock (_lock)
            {
                current = _objects.GetValueOrDefault((resource, ns, name))?.DeepClone().AsObject();
            }

            if (current is null)
            {
                await WriteAsync(context, 404, Status(404, "NotFound", $"{resource} \"{name}\" not found", name, resource));
                return;
            }

            switch (method)
            {
                case "GET":
                    await WriteAsync(context, 200, current);
                    return;
                case "PUT":
                    var replacement = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
                    lock (_lock)
                    {
                        var stored = _objects[(resource, ns, name)];
                        var expected = replacement["metadata"]?["resourceVersion"]?.GetValue<string>();
                        if (expected is not null && expected != stored["metadata"]!["resourceVersion"]!.GetValue<string>())
                        {
                            current = null;
                        }
                        else
                        {
                            var meta = replacement["metadata"]!.AsObject();
                            meta["uid"] = stored["metadata"]!["uid"]!.DeepClone();
                            meta["creationTimestamp"] = stored["metadata"]!["creationTimestamp"]?.DeepClone();
                            if (sub is "status" or "approval")
                            {
                                stored["status"] = replacement["status"]?.DeepClone();
                                replacement = stored;
                            }
                            else if (stored["status"] is { } status && replacement["status"] is null)
                            {
                                replacement["status"] = status.DeepClone(); // PUT of the object keeps its status
                            }

                            Record(resource, "MODIFIED", (resource, ns, name), replacement);
                            current = replacement.DeepClone().AsObject();
                        }
                    }

                    await (current is null
                        ? WriteAsync(context, 409, Status(409, "Conflict", $"Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", name, resource))
                        : WriteAsync(context, 200, current));
                    return;
                case "PATCH" when sub == "status" || sub is null:
                    var patch = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
                    lock (_lock)
                    {
                        var stored = _objects[(resource, ns, name)];
                        if (patch["metadata"]?["resourceVersion"]?.GetValue<string>() is { } expected && expected != stored["metadata"]!["resourceVersion"]!.GetValue<string>())
                        {
                            current = null;
                        }
                        else
                        {
                            MergePatch(stored, sub == "status" ? new JsonObject { ["status"] = patch["status"]?.DeepClone() } : patch);
                            Record(resource, "MODIFIED", (resource, ns, name), stored);
                            if (resource == "pods" && sub == "status")
                            {
                                PodPhases.Add(($"{ns}/{name}", stored["status"]?["phase"]?.GetValue<string>()));
                            }
                            current = stored.DeepClone().AsObject();
                        }
                    }

                    await (current is null
                        ? WriteAsync(context, 409, Status(409, "Conflict", $"Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", name, resource))
                        : WriteAsync(context, 200, current));
                    return;
                case "DELETE":
                    var grace = context.Request.Query["gracePeriodSeconds"].FirstOrDefault() is { } g ? long.Parse(g, CultureInfo.InvariantCulture) : 30;
                    lock (_lock)
                    {
                        var stored = _objects[(resource, ns, name)];
                        var meta = stored["metadata"]!.AsObject();
                        if (resource == "pods" && grace > 0 && stored["spec"]?["nodeName"] is not null)
                        {
                            // Graceful: the kubelet on the node stops the pod, then deletes it with grace 0.
                            meta["deletionTimestamp"] ??= DateTimeOffset.UtcNow.AddSeconds(grace).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
                            meta["deletionGracePeriodSeconds"] = grace;
                            Record(resource, "MODIFIED", (resource, ns, name), stored);
                        }
                        else
                        {
                            _objects.Remove((resource, ns, name));
                            Bump(stored);
                            Publish(resource, "DELETED", stored);
                        }

                        current = stored.DeepClone().AsObject();
                    }

                    await WriteAsync(context, 200, current);
                    return;
            }
        }

        await WriteAsync(context, 405, Status(405, "MethodNotAllowed", $"{method} is not supported here"));
    }

    private async Task ListOrWatchAsync(HttpContext context, string resource, string? ns)
    {
        var query = context.Request.Query;
        var selector = ParseSelector(query["fieldSelector"].FirstOrDefault());
        bool Matches(JsonObject o) =>
            (ns is null || o["metadata"]?["namespace"]?.GetValue<string>() == ns)
            && selector.All(s => Field(o, s.Key) == s.Value);

        if (query["watch"].FirstOrDefault() != "true")
        {
            JsonObject list;
            lock (_lock)
            {
                var items = new JsonArray([.. _objects.Where(p => p.Key.Resource == resource && Matches(p.Value)).Select(p => (JsonNode)p.Value.DeepClone())]);
                list = new JsonObject
                {
                    ["kind"] = resource == "pods" ? "PodList" : "List",
                    ["apiVersion"] = "v1",
                    ["metadata"] = new JsonObject { ["resourceVersion"] = _version.ToString(CultureInfo.InvariantCulture) },
                    ["items"] = items,
                };
            }

            await WriteAsync(context, 200, list);
            return;
        }

        var watcher = new Watcher(resource, Matches, query["allowWatchBookmarks"].FirstOrDefault() == "true");
        lock (_lock)
        {
            var from = long.TryParse(query["resourceVersion"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : (long?)null;
            if (from is { } since && since < _compactedThrough)
            {
                watcher.Lines.Writer.TryWrite(Line("ERROR", Status(410, "Expired", $"too old resource version: {since} ({_compactedThrough})")));
                watcher.Lines.Writer.TryComplete();
            }
            else if (from is { } after)
            {
                foreach (var entry in _history.Where(h => h.Version > after && h.Resource == resource && Matches(h.Object)))
                {
                    watcher.Lines.Writer.TryWrite(Line(entry.Type, entry.Object));
                }

                _watchers.Add(watcher);
                Opened();
            }
            else
            {
                foreach (var obj in _objects.Where(p => p.Key.Resource == resource && Matches(p.Value)).Select(p => p.Value))
                {
                    watcher.Lines.Writer.TryWrite(Line("ADDED", obj));
                }

                _watchers.Add(watcher);
                Opened();
            }
        }

        // timeoutSeconds: the server ends the watch after that long, as the API server does.
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (int.TryParse(query["timeoutSeconds"].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var timeout) && timeout > 0)
        {
            lifetime.CancelAfter(TimeSpan.FromSeconds(timeout));
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.StartAsync(context.RequestAborted);
        try
        {
            await foreach (var line in watcher.Lines.Reader.ReadAllAsync(lifetime.Token))
            {
                await context.Response.WriteAsync(line + "\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                Interlocked.Increment(ref _linesWritten);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away, or timeoutSeconds passed.
        }
        finally
        {
            lock (_lock)
            {
                _watchers.Remove(watcher);
            }
        }
    }

    private void Opened()
    {
        _watchesOpened++;
        foreach (var waiter in _watchWaiters.Where(w => w.Count <= _watchesOpened).ToList())
        {
            waiter.Reached.TrySetResult();
            _watchWaiters.Remove(waiter);
        }
    }

    private void Record(string resource, string type, (string, string, string) key, JsonObject obj)
    {
        Bump(obj);
        _objects[key] = obj;
        Publish(resource, type, obj);
        foreach (var waiter in _objectWaiters.Where(w => (w.Resource, w.Namespace, w.Name) == key && w.Match(obj)).ToList())
        {
            waiter.Seen.TrySetResult();
            _objectWaiters.Remove(waiter);
        }
    }

    private void Bump(JsonObject obj) => obj["metadata"]!.AsObject()["resourceVersion"] = (++_version).ToString(CultureInfo.InvariantCulture);

    private void Publish(string resource, string type, JsonObject obj)
    {
        var snapshot = obj.DeepClone().AsObject();
        _history.Add((_version, resource, type, snapshot));
        foreach (var watcher in _watchers.Where(w => w.Resource == resource && w.Matches(snapshot)))
        {
            watcher.Lines.Writer.TryWrite(Line(type, snapshot));
        }
    }

    private static string Line(string type, JsonObject obj) =>
        new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString();

    private static Dictionary<string, string> ParseSelector(string? selector) =>
        string.IsNullOrEmpty(selector)
            ? []
            : selector.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : string.Empty);

    private static string? Field(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split('.'))
        {
            node = node?[part];
        }

        return node?.GetValue<string>();
    }

    // RFC 7386 JSON merge patch.
    private static void MergePatch(JsonObject target, JsonObject patch)
    {
        foreach (var (key, value) in patch.ToList())
        {
            if (value is null)
            {
                target.Remove(key);
            }
            else if (value is JsonObject patchObject && target[key] is JsonObject targetObject)
            {
                MergePatch(targetObject, patchObject);
            }
            else
            {
                target[key] = value.DeepClone();
            }
        }
    }

    private static JsonObject Status(int code, string reason, string message, string? name = null, string? kind = null) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["details"] = name is null ? null : new JsonObject { ["name"] = name, ["kind"] = kind },
        ["code"] = code,
    };

    private static Task WriteAsync(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(body.ToJsonString());
    }

    private sealed class Watcher(string resource, Func<JsonObject, bool> matches, bool bookmarks)
    {
        public string Resource { get; } = resource;

        public Func<JsonObject, bool> Matches { get; } = matches;

        public bool Bookmarks { get; } = bookmarks;

        public Channel<string> Lines { get; } = Channel.CreateUnbounded<string>();
    }
}
