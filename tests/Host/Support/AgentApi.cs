using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace Krustlet.Host.Tests.Support;

/// <summary>The kubelet API and the pod table of a real agent process, as its tests read them.</summary>
internal static partial class AgentApi
{
    /// <summary>A client of the agent's kubelet API (the address it printed), with the bearer token the test gave it.</summary>
    public static async Task<HttpClient> ConnectAsync(AgentProcess agent, string token, CancellationToken cancellationToken)
    {
        var line = await agent.WaitForLineAsync(l => l.Contains("kubelet API on https://", StringComparison.Ordinal), cancellationToken);
        var endpoint = line[(line.IndexOf("https://", StringComparison.Ordinal) + "https://".Length)..].Trim();
        var client = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator })
        {
            BaseAddress = new Uri($"https://{endpoint}/"),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static async Task<IList<V1Pod>> PodsAsync(HttpClient api, CancellationToken cancellationToken) =>
        KubernetesJson.Deserialize<V1PodList>(await api.GetStringAsync("pods", cancellationToken)).Items;

    /// <summary>A row of the pod table standalone mode prints: name, ready, status, restarts.</summary>
    [GeneratedRegex(@"^(?<name>\S+)\s+(?<ready>\d+/\d+)\s+(?<status>\S+)\s+(?<restarts>\d+)")]
    public static partial Regex TableRow();
}
