using System.Net;
using Krustlet.Host.Tests.KubeletApi;
using Krustlet.Stages.Run;
using Microsoft.Extensions.Time.Testing;

namespace Krustlet.Host.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): kubelet API requests a client can get wrong. Each gets
/// its exact status and message (the kubelet's wording where it has one), and the node keeps serving
/// a good request for a running pod's log in between and after.
/// </summary>
[TestClass]
public sealed class BadKubeletRequestCorpusTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Method, path and query, the status, and the body.</summary>
    private static readonly (string Method, string Target, HttpStatusCode Status, string Body)[] Requests =
    [
        ("GET", "/containerLogs/default/web/absent", HttpStatusCode.NotFound, "container \"absent\" not found in pod \"default/web\"; its containers are: main"),
        ("GET", "/containerLogs/default/nopod/main", HttpStatusCode.NotFound, "pod \"default/nopod\" not found on this node"),
        ("GET", "/containerLogs/default/web", HttpStatusCode.NotFound, "404 page not found: GET /containerLogs/default/web"),
        ("GET", "/containerLogs/default/web/main?tailLines=abc", HttpStatusCode.BadRequest, "tailLines: \"abc\" is not an integer"),
        ("GET", "/containerLogs/default/web/main?tailLines=-1", HttpStatusCode.BadRequest, "tailLines: -1 must be at least 0"),
        ("GET", "/containerLogs/default/web/main?sinceSeconds=0", HttpStatusCode.BadRequest, "sinceSeconds: 0 must be at least 1"),
        ("GET", "/containerLogs/default/web/main?sinceTime=yesterday", HttpStatusCode.BadRequest, "sinceTime: \"yesterday\" is not an RFC 3339 time (like 2026-01-02T15:04:05Z)"),
        ("GET", "/containerLogs/default/web/main?limitBytes=0", HttpStatusCode.BadRequest, "limitBytes: 0 must be at least 1"),
        ("GET", "/containerLogs/default/web/main?sinceSeconds=5&sinceTime=2026-03-01T12:00:00Z", HttpStatusCode.BadRequest, "at most one of sinceTime or sinceSeconds may be given"),
        ("GET", "/containerLogs/default/web/main?previous=true", HttpStatusCode.BadRequest, "previous terminated container \"main\" in pod \"default/web\" not found"),
        ("GET", "/containerLogs/default/web/main?follow=maybe", HttpStatusCode.BadRequest, "follow: \"maybe\" is not a boolean (true or false)"),
        ("GET", "/containerLogs/default/%2e%2e/main", HttpStatusCode.NotFound, "404 page not found: GET /containerLogs/main"),
        ("GET", "/containerLogs/..%2f..%2fetc/passwd/x", HttpStatusCode.NotFound, "pod \"..%2f..%2fetc/passwd\" not found on this node"),
        ("POST", "/exec/default/web/main?command=ls&stdout=true", HttpStatusCode.BadRequest, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"exec is not supported for wasm containers: a WebAssembly module has no shell or process in which to run a command\",\"reason\":\"BadRequest\",\"code\":400}"),
        ("GET", "/attach/default/web/main", HttpStatusCode.BadRequest, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"attach is not supported for wasm containers: a WebAssembly guest has no terminal to attach to; read its output with kubectl logs\",\"reason\":\"BadRequest\",\"code\":400}"),
        ("GET", "/portForward/default/web", HttpStatusCode.BadRequest, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"portForward is not supported for wasm containers: wasm pods share the node\\u0027s network and have no network namespace to forward into\",\"reason\":\"BadRequest\",\"code\":400}"),
        ("POST", "/run/default/web/main", HttpStatusCode.BadRequest, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"run is not supported for wasm containers: a WebAssembly module has no shell or process in which to run a command\",\"reason\":\"BadRequest\",\"code\":400}"),
        ("DELETE", "/pods", HttpStatusCode.MethodNotAllowed, "405: Method Not Allowed: DELETE /pods (it takes GET)"),
        ("POST", "/stats/summary", HttpStatusCode.MethodNotAllowed, "405: Method Not Allowed: POST /stats/summary (it takes GET)"),
        ("GET", "/no/such/endpoint", HttpStatusCode.NotFound, "404 page not found: GET /no/such/endpoint"),
        ("GET", "/pods?" + new string('a', 60_000), HttpStatusCode.RequestUriTooLong, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"the request URI is longer than 8192 bytes\",\"reason\":\"RequestURITooLong\",\"code\":414}"),
    ];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Every_bad_request_gets_its_status_and_reason_and_the_node_keeps_serving()
    {
        var ct = TestContext.CancellationToken;
        var clock = new FakeTimeProvider(Start);
        await using var host = await KubeletApiHost.StartAsync(ct, clock);
        var pod = TestPods.Pod("web", "uid-web", ["main"]);
        host.Pods.Set(pod);
        using (var log = host.Writer(pod, "main", 0, clock))
        {
            log.Write(LogStream.Stdout, "serving\n"u8.ToArray());
        }

        using var client = host.Authorized();
        var seen = new List<string>();
        var wrong = new List<string>();
        foreach (var (method, target, status, body) in Requests)
        {
            using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), target), ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            seen.Add(text);
            if (response.StatusCode != status || text.TrimEnd('\n') != body)
            {
                wrong.Add($"{method} {target[..Math.Min(target.Length, 80)]}: expected {(int)status} \"{body}\", got {(int)response.StatusCode} \"{text[..Math.Min(text.Length, 400)]}\"");
            }

            Assert.AreEqual("serving\n", await client.GetStringAsync("/containerLogs/default/web/main", ct), "a good request is still served");
        }

        Assert.IsEmpty(wrong, string.Join("\n", wrong));
        BadInputMessages.AssertNoneLeaksAnException(seen);
    }
}
