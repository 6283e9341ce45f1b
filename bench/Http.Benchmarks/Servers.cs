using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Http.Benchmarks;

/// <summary>What every target answers to <c>GET /</c>.</summary>
internal static class Hello
{
    public const string Body = "hello\n";

    public const string ContentType = "text/plain";

    public static ReadOnlySpan<byte> BodyBytes => "hello\n"u8;
}

/// <summary>
/// The two baselines, each run as a child process of the harness (<c>serve-kestrel PORT</c>,
/// <c>serve-cgi PORT BINARY</c>): Kestrel on 127.0.0.1, HTTP/1.1 only, no server header, no logging,
/// the way the agent's own Kestrel servers are built (<c>WebApplication.CreateEmptyBuilder</c> +
/// <c>UseKestrelCore</c>). The child prints <c>listening on 127.0.0.1:PORT</c> once bound and exits when
/// its standard input closes (the harness is gone).
/// </summary>
internal static class Servers
{
    private static readonly byte[] Body = Hello.BodyBytes.ToArray();

    public static async Task<int> RunAsync(string mode, int port, string? cgiBinary)
    {
        RequestDelegate handler = mode switch
        {
            "serve-kestrel" => Plain,
            "serve-cgi" when cgiBinary is not null => context => CgiAsync(context, cgiBinary, port),
            _ => throw new BenchException($"unknown server mode {mode}"),
        };

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "krustlet-http-bench-" + mode });
        builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http1);
        });
        await using var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"listening on 127.0.0.1:{port}"));

        // Lives as long as the harness holds our standard input open.
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = new Thread(() =>
        {
            try
            {
                Console.OpenStandardInput().CopyTo(Stream.Null);
            }
            finally
            {
                closed.TrySetResult();
            }
        })
        { IsBackground = true, Name = "stdin watcher" };
        watcher.Start();
        await closed.Task;
        await app.StopAsync();
        return 0;
    }

    /// <summary>The ceiling: the same bytes as the handler, from memory.</summary>
    private static Task Plain(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = Hello.ContentType;
        response.ContentLength = Body.Length;
        return response.Body.WriteAsync(Body, context.RequestAborted).AsTask();
    }

    /// <summary>
    /// Process-per-request CGI/1.1 (RFC 3875): a new process of <paramref name="binary"/> per request with
    /// the meta-variables as its whole environment, the body on its stdin, its stdout parsed as a CGI
    /// response (header lines, an optional <c>Status:</c>, a blank line, the body).
    /// </summary>
    private static async Task CgiAsync(HttpContext context, string binary, int port)
    {
        var request = context.Request;
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var environment = start.Environment;
        environment.Clear();
        environment["GATEWAY_INTERFACE"] = "CGI/1.1";
        environment["SERVER_PROTOCOL"] = request.Protocol;
        environment["SERVER_SOFTWARE"] = "krustlet-http-bench";
        environment["SERVER_NAME"] = "127.0.0.1";
        environment["SERVER_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        environment["REQUEST_METHOD"] = request.Method;
        environment["SCRIPT_NAME"] = "";
        environment["PATH_INFO"] = request.Path.Value ?? "/";
        environment["QUERY_STRING"] = request.QueryString.HasValue ? request.QueryString.Value![1..] : "";
        environment["REMOTE_ADDR"] = context.Connection.RemoteIpAddress?.ToString() ?? "";
        environment["REMOTE_PORT"] = context.Connection.RemotePort.ToString(CultureInfo.InvariantCulture);
        if (request.ContentLength is { } length)
        {
            environment["CONTENT_LENGTH"] = length.ToString(CultureInfo.InvariantCulture);
        }

        if (request.ContentType is { } contentType)
        {
            environment["CONTENT_TYPE"] = contentType;
        }

        foreach (var (name, value) in request.Headers)
        {
            if (!name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                environment["HTTP_" + name.ToUpperInvariant().Replace('-', '_')] = value.ToString();
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{binary} did not start");
        var output = new MemoryStream();
        var reading = process.StandardOutput.BaseStream.CopyToAsync(output, context.RequestAborted);
        try
        {
            await request.Body.CopyToAsync(process.StandardInput.BaseStream, context.RequestAborted);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // the program exited without reading its input: allowed
        }

        await reading;
        await process.WaitForExitAsync(context.RequestAborted);
        if (process.ExitCode != 0 || !TryParse(output.GetBuffer().AsSpan(0, (int)output.Length), out var status, out var headers, out var body))
        {
            context.Response.StatusCode = 502;
            return;
        }

        var response = context.Response;
        response.StatusCode = status;
        foreach (var (name, value) in headers)
        {
            response.Headers[name] = value;
        }

        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>Splits a CGI response into its status (from <c>Status:</c>, else 200), header fields and body.</summary>
    internal static bool TryParse(ReadOnlySpan<byte> output, out int status, out List<(string Name, string Value)> headers, out byte[] body)
    {
        status = 200;
        headers = [];
        body = [];
        var position = 0;
        while (true)
        {
            var newline = output[position..].IndexOf((byte)'\n');
            if (newline < 0)
            {
                return false;
            }

            var line = output.Slice(position, newline);
            position += newline + 1;
            if (line.Length > 0 && line[^1] == '\r')
            {
                line = line[..^1];
            }

            if (line.IsEmpty)
            {
                body = output[position..].ToArray();
                return true;
            }

            var text = Encoding.Latin1.GetString(line);
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return false;
            }

            var name = text[..colon].Trim();
            var value = text[(colon + 1)..].Trim();
            if (name.Equals("Status", StringComparison.OrdinalIgnoreCase))
            {
                var code = value.Split(' ', 2)[0];
                if (!int.TryParse(code, NumberStyles.None, CultureInfo.InvariantCulture, out status))
                {
                    return false;
                }
            }
            else
            {
                headers.Add((name, value));
            }
        }
    }
}
