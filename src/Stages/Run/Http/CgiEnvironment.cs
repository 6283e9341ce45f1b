using System.Globalization;
using System.Net;
using System.Reflection;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Stages.Run.Http;

/// <summary>
/// The environment of one request's instance: the container's own environment, then the CGI/1.1
/// meta-variables of RFC 3875 §4.1 and the extras WAGI adds (a meta-variable wins over a container
/// variable of the same name). The handler is mounted at the root, so <c>SCRIPT_NAME</c> is empty and
/// <c>PATH_INFO</c> is the whole decoded path. As §4.1.18 asks, headers carrying credentials
/// (<c>Authorization</c>, <c>Proxy-Authorization</c>) get no <c>HTTP_*</c> variable; <c>AUTH_TYPE</c>
/// names the scheme.
/// </summary>
internal static class CgiEnvironment
{
    private static readonly string ServerSoftware = "krustlet/" + (typeof(CgiEnvironment).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0");

    public static List<KeyValuePair<string, string>> For(HttpContext context, IReadOnlyList<KeyValuePair<string, string>> containerEnv, int bodyLength, int port)
    {
        var request = context.Request;
        var env = new List<KeyValuePair<string, string>>(containerEnv.Count + 24);
        env.AddRange(containerEnv);
        void Add(string name, string value) => env.Add(new(name, value));

        var path = request.Path.HasValue ? request.Path.Value! : "/";
        var rawTarget = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? path;
        var rawPath = rawTarget.Split('?', 2)[0];
        var query = request.QueryString.HasValue ? request.QueryString.Value![1..] : string.Empty;
        var host = request.Host.HasValue ? request.Host.Host : (context.Connection.LocalIpAddress ?? IPAddress.Loopback).ToString();

        Add("GATEWAY_INTERFACE", "CGI/1.1");
        Add("SERVER_SOFTWARE", ServerSoftware);
        Add("SERVER_PROTOCOL", request.Protocol);
        Add("SERVER_NAME", host);
        Add("SERVER_PORT", port.ToString(CultureInfo.InvariantCulture));
        Add("REQUEST_METHOD", request.Method);
        Add("SCRIPT_NAME", string.Empty);
        Add("PATH_INFO", path);
        Add("PATH_TRANSLATED", path);
        Add("QUERY_STRING", query);
        var remote = context.Connection.RemoteIpAddress;
        var remoteText = remote is null ? string.Empty : (remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote).ToString();
        Add("REMOTE_ADDR", remoteText);
        Add("REMOTE_HOST", remoteText);
        Add("REMOTE_PORT", context.Connection.RemotePort.ToString(CultureInfo.InvariantCulture));
        if (request.ContentType is { } contentType)
        {
            Add("CONTENT_TYPE", contentType);
        }

        if (bodyLength > 0 || request.ContentLength is not null)
        {
            Add("CONTENT_LENGTH", bodyLength.ToString(CultureInfo.InvariantCulture));
        }

        if (request.Headers.Authorization is { Count: > 0 } authorization)
        {
            Add("AUTH_TYPE", authorization.ToString().Split(' ', 2)[0]);
        }

        // WAGI's extras.
        Add("X_MATCHED_ROUTE", "/...");
        Add("X_RAW_PATH_INFO", rawPath);
        Add("X_FULL_URL", $"{request.Scheme}://{request.Host}{rawTarget}");

        foreach (var (name, values) in request.Headers)
        {
            if (name.Equals("Authorization", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Proxy-Authorization", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            Add(string.Create(name.Length + 5, name, static (span, n) =>
            {
                "HTTP_".CopyTo(span);
                for (var i = 0; i < n.Length; i++)
                {
                    var c = n[i];
                    span[5 + i] = c == '-' ? '_' : char.ToUpperInvariant(c);
                }
            }), values.ToString());
        }

        return env;
    }
}
