using System.Globalization;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Krustlet.Stages.ImagePull.Registry;

/// <summary>
/// A client for the OCI distribution API on HttpClient: manifests and blobs, pushes, and the
/// registry auth flows (anonymous, Basic, and the Bearer token challenge with realm, service and scope).
/// </summary>
public sealed class OciRegistryClient : IRegistryClient, IDisposable
{
    private readonly HttpClient _http;
    private readonly RegistryOptions _options;
    // Per host, scope and credentials: a header (or token) one pod's credentials earned is never sent for
    // another's, or for a pod that has none.
    private readonly ConcurrentDictionary<(string Host, string Scope, string Credentials), AuthenticationHeaderValue> _auth = new();
    private readonly TimeProvider _time;

    /// <param name="options">The registries' settings, with the connect, response and idle timeouts.</param>
    /// <param name="handler">The HTTP handler (tests); by default one with the options' connect timeout.</param>
    /// <param name="time">The clock of the response and idle timeouts.</param>
    public OciRegistryClient(RegistryOptions options, HttpMessageHandler? handler = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = time ?? TimeProvider.System;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, ConnectTimeout = options.ConnectTimeout }, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("krustlet-dotnet/0.1");
    }

    public void Dispose() => _http.Dispose();

    public async Task<ManifestResponse> GetManifestAsync(string host, string repository, string reference, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(
            host,
            Pull(repository),
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, Url(host, $"/v2/{repository}/manifests/{reference}"));
                foreach (var type in MediaTypes.ManifestAccept)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
                }

                return request;
            },
            credentials,
            cancellationToken);
        await EnsureSuccessAsync(response, $"manifest {host}/{repository}{(reference.Contains(':', StringComparison.Ordinal) ? "@" : ":")}{reference}", cancellationToken);
        var content = await ReadLimitedAsync(response.Content, _options.MaxManifestBytes, $"manifest {reference}", cancellationToken);
        var digest = ContentDigest.Of(content);
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
        {
            throw new RegistryException($"manifest {host}/{repository}@{reference} has digest {digest}: the registry served other content");
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is null or "application/json" or "text/plain")
        {
            mediaType = MediaTypeOf(content) ?? MediaTypes.OciManifest;
        }

        return new ManifestResponse(mediaType, digest, content);
    }

    public async Task<Stream> OpenBlobAsync(string host, string repository, string digest, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var response = await SendAsync(host, Pull(repository), () => new HttpRequestMessage(HttpMethod.Get, Url(host, $"/v2/{repository}/blobs/{digest}")), credentials, cancellationToken);
        try
        {
            await EnsureSuccessAsync(response, $"blob {host}/{repository}@{digest}", cancellationToken);
            return new IdleTimeoutStream(await response.Content.ReadAsStreamAsync(cancellationToken), _options.IdleTimeout, _time, $"{host} sent nothing of blob {repository}@{digest} for {_options.IdleTimeout.TotalSeconds:0.###}s (Registries:IdleTimeout)");
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public async Task PushBlobAsync(string host, string repository, string digest, Func<Stream> content, long length, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var scope = Push(repository);
        using (var head = await SendAsync(host, scope, () => new HttpRequestMessage(HttpMethod.Head, Url(host, $"/v2/{repository}/blobs/{digest}")), credentials, cancellationToken))
        {
            if (head.IsSuccessStatusCode)
            {
                return;
            }
        }

        Uri location;
        using (var start = await SendAsync(host, scope, () => new HttpRequestMessage(HttpMethod.Post, Url(host, $"/v2/{repository}/blobs/uploads/")), credentials, cancellationToken))
        {
            await EnsureSuccessAsync(start, $"upload to {host}/{repository}", cancellationToken);
            location = start.Headers.Location ?? throw new RegistryException($"{host} started an upload without a Location");
            if (!location.IsAbsoluteUri)
            {
                location = new Uri(Url(host, "/"), location);
            }
        }

        var target = new Uri($"{location}{(location.Query.Length > 0 ? "&" : "?")}digest={Uri.EscapeDataString(digest)}");
        using var put = await SendAsync(
            host,
            scope,
            () =>
            {
                var body = new StreamContent(content());
                body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                body.Headers.ContentLength = length;
                return new HttpRequestMessage(HttpMethod.Put, target) { Content = body };
            },
            credentials,
            cancellationToken);
        await EnsureSuccessAsync(put, $"blob upload {digest} to {host}/{repository}", cancellationToken);
    }

    public async Task<string> PushManifestAsync(string host, string repository, string reference, string mediaType, byte[] manifest, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(
            host,
            Push(repository),
            () =>
            {
                var body = new ByteArrayContent(manifest);
                body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return new HttpRequestMessage(HttpMethod.Put, Url(host, $"/v2/{repository}/manifests/{reference}")) { Content = body };
            },
            credentials,
            cancellationToken);
        await EnsureSuccessAsync(response, $"manifest push to {host}/{repository}:{reference}", cancellationToken);
        return ContentDigest.Of(manifest);
    }

    private static string Pull(string repository) => $"repository:{repository}:pull";

    private static string Push(string repository) => $"repository:{repository}:pull,push";

    private Uri Url(string host, string path) => new($"{(_options.IsInsecure(host) ? "http" : "https")}://{host}{path}");

    // Sends a request; on 401 answers the registry's challenge (Basic, or a Bearer token from the realm)
    // and sends it again. The header that worked is kept per host, scope and credentials.
    private async Task<HttpResponseMessage> SendAsync(string host, string scope, Func<HttpRequestMessage> build, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var key = (host, scope, credentials?.Fingerprint ?? string.Empty);
        var response = await SendOnceAsync(build, _auth.GetValueOrDefault(key), cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        var challenge = response.Headers.WwwAuthenticate.FirstOrDefault();
        response.Dispose();
        if (challenge is null)
        {
            throw new RegistryException($"{host} refused the request (401) without an authentication challenge", 401);
        }

        AuthenticationHeaderValue header;
        if (string.Equals(challenge.Scheme, "Basic", StringComparison.OrdinalIgnoreCase))
        {
            header = credentials is null
                ? throw new RegistryException($"{host} requires authentication (Basic) and no credentials were given", 401)
                : BasicHeader(credentials);
        }
        else if (string.Equals(challenge.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase))
        {
            header = await FetchTokenAsync(host, challenge.Parameter ?? string.Empty, scope, credentials, cancellationToken);
        }
        else
        {
            throw new RegistryException($"{host} asked for unsupported authentication scheme {challenge.Scheme}", 401);
        }

        response = await SendOnceAsync(build, header, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            throw new RegistryException($"{host} refused the credentials{(credentials is null ? string.Empty : $" of user {credentials.Username}")} (401 unauthorized)", 401);
        }

        _auth[key] = header;
        return response;
    }

    private async Task<HttpResponseMessage> SendOnceAsync(Func<HttpRequestMessage> build, AuthenticationHeaderValue? auth, CancellationToken cancellationToken)
    {
        using var request = build();
        request.Headers.Authorization = auth;

        // Connecting and the head of the answer are bounded together: a registry that accepts the
        // connection and never answers fails the pull within the response timeout, with a reason.
        using var timeout = new CancellationTokenSource(_options.ResponseTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new RegistryException(string.Create(CultureInfo.InvariantCulture, $"{request.RequestUri?.Authority} did not answer {request.Method} {request.RequestUri?.AbsolutePath} within {_options.ResponseTimeout.TotalSeconds:0.###}s (Registries:ResponseTimeout)"));
        }
        catch (HttpRequestException ex)
        {
            throw new RegistryException($"{request.RequestUri?.Authority}: {ex.Message}", null, ex);
        }
    }

    private async Task<AuthenticationHeaderValue> FetchTokenAsync(string host, string parameter, string scope, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var fields = ParseChallenge(parameter);
        if (!fields.TryGetValue("realm", out var realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
        {
            throw new RegistryException($"{host} sent a Bearer challenge without a usable realm", 401);
        }

        var query = new StringBuilder();
        if (fields.TryGetValue("service", out var service))
        {
            query.Append("service=").Append(Uri.EscapeDataString(service));
        }

        query.Append(query.Length > 0 ? "&" : string.Empty).Append("scope=").Append(Uri.EscapeDataString(fields.GetValueOrDefault("scope") ?? scope));
        using var request = new HttpRequestMessage(HttpMethod.Get, new UriBuilder(realmUri) { Query = query.ToString() }.Uri);
        if (credentials is not null)
        {
            request.Headers.Authorization = BasicHeader(credentials);
        }

        using var response = await _http.SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(response, $"token from {realmUri.Authority}", cancellationToken);
        using var json = JsonDocument.Parse(await ReadLimitedAsync(response.Content, 1024 * 1024, "token", cancellationToken));
        var token = (json.RootElement.TryGetProperty("token", out var t) ? t.GetString() : null)
            ?? (json.RootElement.TryGetProperty("access_token", out var a) ? a.GetString() : null)
            ?? throw new RegistryException($"the token service of {host} answered without a token");
        return new AuthenticationHeaderValue("Bearer", token);
    }

    private static Dictionary<string, string> ParseChallenge(string parameter)
    {
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < parameter.Length)
        {
            var eq = parameter.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var name = parameter[i..eq].Trim(' ', ',');
            string value;
            if (eq + 1 < parameter.Length && parameter[eq + 1] == '"')
            {
                var end = parameter.IndexOf('"', eq + 2);
                end = end < 0 ? parameter.Length : end;
                value = parameter[(eq + 2)..end];
                i = end + 1;
            }
            else
            {
                var end = parameter.IndexOf(',', eq + 1);
                end = end < 0 ? parameter.Length : end;
                value = parameter[(eq + 1)..end];
                i = end;
            }

            fields[name] = value;
            i++;
        }

        return fields;
    }

    private static AuthenticationHeaderValue BasicHeader(RegistryCredentials credentials) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.Username}:{credentials.Password}")));

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var detail = string.Empty;
        try
        {
            using var json = JsonDocument.Parse(await ReadLimitedAsync(response.Content, 64 * 1024, "error", cancellationToken));
            if (json.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array && errors.GetArrayLength() > 0)
            {
                var first = errors[0];
                detail = $": {first.GetProperty("code").GetString()}: {(first.TryGetProperty("message", out var m) ? m.GetString() : string.Empty)}";
            }
        }
        catch (Exception ex) when (ex is JsonException or RegistryException or KeyNotFoundException or InvalidOperationException)
        {
        }

        var status = (int)response.StatusCode;
        throw new RegistryException($"{what}: {status} {response.ReasonPhrase}{detail}", status);
    }

    private static async Task<byte[]> ReadLimitedAsync(HttpContent content, long limit, string what, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > limit)
        {
            throw new RegistryException($"{what} is {content.Headers.ContentLength} bytes, over the limit of {limit}");
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                throw new RegistryException($"{what} is over the limit of {limit} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static string? MediaTypeOf(byte[] manifest)
    {
        try
        {
            using var json = JsonDocument.Parse(manifest);
            return json.RootElement.TryGetProperty("mediaType", out var type) ? type.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
