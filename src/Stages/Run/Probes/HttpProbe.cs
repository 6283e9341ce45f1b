using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace Krustlet.Stages.Run.Probes;

/// <summary>
/// The kubelet's httpGet probe (pkg/probe/http): a GET with the probe's headers, <c>User-Agent:
/// kube-probe/1.31</c> and <c>Accept: */*</c> unless the probe sets them, no keep-alive, no compression,
/// no proxy, HTTPS without verifying the certificate. 200–399 is a success. Redirects are followed to
/// the same host name (any port), at most 9 of them (Go's client stops "after 10 redirects": a failure);
/// a redirect to another host is not followed and counts as a success with a warning ("Probe terminated
/// redirects, Response body: …"), as is any 3xx that is not followed. At most 10 KiB of the body is read.
/// A failure never quotes the body ("HTTP probe failed with statuscode: 500"). The timeout covers the
/// whole exchange on the wall clock (a request's own deadline); when probes run is the agent's clock.
/// </summary>
internal static class HttpProbe
{
    /// <summary>The kubelet sends its major.minor version; this node reports itself as v1.31.</summary>
    public const string UserAgent = "kube-probe/1.31";

    /// <summary>What the kubelet reads of a response body (maxRespBodyLength).</summary>
    public const int MaxBodyBytes = 10 * 1024;

    /// <summary>Go's http.Client refuses the request after this many (checkRedirect: len(via) >= 10).</summary>
    public const int MaxRequests = 10;

#pragma warning disable CA5359 // The kubelet probes HTTPS without verifying certificates (InsecureSkipVerify): a pod's certificate names a service, not its IP.
    private static readonly HttpMessageInvoker Client = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = TimeSpan.Zero,
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
    });
#pragma warning restore CA5359

    /// <summary>The probe's URL as the kubelet's formatURL builds it: scheme://host:port/path.</summary>
    public static bool TryUrl(string scheme, string host, int port, string path, out Uri url) =>
        Uri.TryCreate($"{scheme}://{ProbeTarget.JoinHostPort(host, port)}{(path.StartsWith('/') ? path : "/" + path)}", UriKind.Absolute, out url!);

    public static async Task<ProbeResult> GetAsync(Uri url, IReadOnlyList<KeyValuePair<string, string>> headers, TimeSpan timeout, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(headers);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(timeout);
        var current = url;
        var keepHost = true;
        for (var requests = 1; ; requests++)
        {
            HttpResponseMessage response;
            try
            {
                using var request = Request(current, headers, keepHost);
                response = await Client.SendAsync(request, deadline.Token);
            }
            catch (OperationCanceledException) when (!stop.IsCancellationRequested)
            {
                return ProbeResult.Failure($"Get \"{current.AbsoluteUri}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
            }
            catch (HttpRequestException ex)
            {
                return ProbeResult.Failure($"Get \"{current.AbsoluteUri}\": {Describe(current, ex)}");
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if (string.Equals(next.Host, url.Host, StringComparison.OrdinalIgnoreCase))
                    {
                        if (requests >= MaxRequests)
                        {
                            return ProbeResult.Failure($"Get \"{next.AbsoluteUri}\": stopped after {MaxRequests} redirects");
                        }

                        current = next;
                        keepHost = !location.IsAbsoluteUri; // Go keeps a custom Host header through a relative redirect only
                        continue;
                    }

                    // Another host: the kubelet's client stops here and this response is the result.
                }

                string body;
                try
                {
                    body = await ReadBodyAsync(response, deadline.Token);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    return ProbeResult.Error("context deadline exceeded (Client.Timeout or context cancellation while reading body)");
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    return ProbeResult.Error(ex.Message);
                }

                return status switch
                {
                    >= 200 and < 300 => ProbeResult.Success(body),
                    >= 300 and < 400 => ProbeResult.Warning($"Probe terminated redirects, Response body: {body}"),
                    _ => ProbeResult.Failure($"HTTP probe failed with statuscode: {status}"),
                };
            }
        }
    }

    private static HttpRequestMessage Request(Uri url, IReadOnlyList<KeyValuePair<string, string>> headers, bool keepHost)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        foreach (var (name, value) in headers)
        {
            if (string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase))
            {
                if (keepHost)
                {
                    request.Headers.Host = value;
                }
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        if (!headers.Any(h => string.Equals(h.Key, "User-Agent", StringComparison.OrdinalIgnoreCase)))
        {
            request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        }

        if (!headers.Any(h => string.Equals(h.Key, "Accept", StringComparison.OrdinalIgnoreCase)))
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*"));
        }

        request.Headers.ConnectionClose = true; // the kubelet's transport: DisableKeepAlives
        return request;
    }

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxBodyBytes];
        var length = 0;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        int read;
        while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private static string Describe(Uri url, HttpRequestException error)
    {
        if (error.InnerException is SocketException socket)
        {
            return GoNetErrors.Dial(url.DnsSafeHost, ProbeTarget.JoinHostPort(url.DnsSafeHost, url.Port), socket);
        }

        return error.HttpRequestError switch
        {
            HttpRequestError.ResponseEnded => "EOF",
            HttpRequestError.NameResolutionError => $"dial tcp: lookup {url.DnsSafeHost}: no such host",
            _ => error.InnerException?.Message ?? error.Message,
        };
    }
}
