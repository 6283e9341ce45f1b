using System.CommandLine;
using k8s;
using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host;

/// <summary><c>krustlet node</c>: run as a node agent of a cluster, until interrupted.</summary>
internal static class NodeCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var flags = new SettingsFlags();
        var node = new Command("node", "Run as a node agent of a Kubernetes cluster.");
        flags.AddTo(node);
        node.SetAction(async (parse, ct) =>
        {
            if (await flags.ReadOrReportAsync(parse, error) is not { } settings)
            {
                return SettingsFlags.InvalidSettingsExitCode;
            }

            return await AgentHost.RunAsync(settings, error, (context, stop) => RunAsync(settings, output, context, stop), ct);
        });
        return node;
    }

    /// <summary>
    /// Connects to the cluster, registers the node, forgets pods deleted while the agent was down, then
    /// runs the node's pods until <paramref name="cancellationToken"/> fires; stops them and writes their
    /// last statuses.
    /// </summary>
    public static async Task RunAsync(AgentSettings settings, TextWriter output, AgentContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(context);
        using var client = new Kubernetes(KubernetesConnection.Load(settings.Kubeconfig), new ApiRateLimiter(settings.ApiQps, settings.ApiBurst, context.Time));
        await using var events = KubernetesEventRecorder.Start(client, settings.NodeName);
        var services = new AgentServices(
            new KubernetesPodResources(client),
            new KubernetesPodStatusWriter(client, settings.NodeIp, context.Time, context.LoggerFactory.CreateLogger<KubernetesPodStatusWriter>()),
            events,
            NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods));
        await using var runtime = AgentRuntime.Start(settings, services, saveState: true, context.LoggerFactory, context.MeterFactory, context.Time);
        await using var api = await runtime.StartKubeletApiAsync(context.LoggerFactory, context.Time, cancellationToken, reviews: new KubernetesReviews(client));
        await output.WriteLineAsync($"kubelet API on https://{api.Endpoint}");

        var nodeOptions = new NodeOptions(settings.NodeName, settings.NodeIp, settings.MaxPods)
        {
            KubeletPort = api.Endpoint.Port,
            Labels = settings.NodeLabels,
            Taints = settings.NodeTaints,
        };
        var agent = new NodeAgent(client, nodeOptions, context.Time, context.LoggerFactory.CreateLogger<NodeAgent>());
        await agent.RegisterAsync(cancellationToken);
        await output.WriteLineAsync($"node {settings.NodeName} registered; watching its pods");

        // Pods deleted while the agent was down leave nothing behind.
        var onNode = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={settings.NodeName}", cancellationToken: cancellationToken);
        AgentRuntime.ForgetPodsExcept(settings, onNode.Items.Select(p => p.Metadata.Uid).ToHashSet(StringComparer.Ordinal));

        var lease = agent.RunAsync(cancellationToken);
        await runtime.RunAsync(new KubernetesPodSource(client, settings.NodeName, context.Time, context.LoggerFactory.CreateLogger<KubernetesPodSource>()), cancellationToken);
        var shutdown = await runtime.StopAsync();
        await lease;
        await output.WriteLineAsync($"node {settings.NodeName} stopped: {shutdown.Graph.Drained} items drained, {shutdown.UnwrittenReports.Count} reports unwritten");
    }
}
