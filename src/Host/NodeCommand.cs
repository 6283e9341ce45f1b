using System.CommandLine;
using k8s;
using Krustlet.Host.Agent;
using Krustlet.Host.Certificates;
using Krustlet.Host.Configuration;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Host.PipelinePage;
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

            // A bootstrap kubeconfig that will be needed and cannot be used is a settings error, found before anything starts.
            if (settings.BootstrapKubeconfig is { } bootstrap && !TlsBootstrap.IsUsable(settings.Kubeconfig!, TimeProvider.System))
            {
                try
                {
                    TlsBootstrap.ReadBootstrap(bootstrap);
                }
                catch (InvalidSettingsException ex)
                {
                    await error.WriteLineAsync($"error: {ex.Message}");
                    return SettingsFlags.InvalidSettingsExitCode;
                }
            }

            return await AgentHost.RunAsync(settings, error, (context, stop) => RunAsync(settings, output, context, stop), ct);
        });
        return node;
    }

    /// <summary>
    /// Connects to the cluster (first bootstrapping the kubeconfig with <c>--bootstrap-kubeconfig</c> when
    /// it is missing), registers the node, forgets pods deleted while the agent was down, then runs the
    /// node's pods until <paramref name="cancellationToken"/> fires, keeping a bootstrapped node's
    /// certificates renewed; stops the pods and writes their last statuses.
    /// </summary>
    public static async Task RunAsync(AgentSettings settings, TextWriter output, AgentContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(context);
        var clientCertificate = settings.BootstrapKubeconfig is null ? null : await TlsBootstrap.EnsureKubeconfigAsync(settings, context.Time, context.LoggerFactory, cancellationToken);
        using var client = new Kubernetes(TlsBootstrap.Connect(settings.Kubeconfig, clientCertificate), new ApiRateLimiter(settings.ApiQps, settings.ApiBurst, context.Time));
        await using var events = KubernetesEventRecorder.Start(client, settings.NodeName);
        var services = new AgentServices(
            new KubernetesPodResources(client),
            new KubernetesPodStatusWriter(client, settings.NodeIp, context.Time, context.LoggerFactory.CreateLogger<KubernetesPodStatusWriter>()),
            events,
            NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods));
        await using var runtime = AgentRuntime.Start(settings, services, saveState: true, context.LoggerFactory, context.MeterFactory, context.Time);
        await using var page = PipelinePageHost.Create(runtime, TimeSpan.FromSeconds(1), context.LoggerFactory, context.Time);
        await using var api = await runtime.StartKubeletApiAsync(context.LoggerFactory, context.Time, cancellationToken, reviews: new KubernetesReviews(client), routes: page?.KubeletRoutes);
        await output.WriteLineAsync($"kubelet API on https://{api.Endpoint}");
        if (page is not null)
        {
            await output.WriteLineAsync(await page.StartAsync(api.Endpoint, cancellationToken));
        }

        var nodeOptions = new NodeOptions(settings.NodeName, settings.NodeIp, settings.MaxPods)
        {
            KubeletPort = api.Endpoint.Port,
            Labels = settings.NodeLabels,
            Taints = settings.NodeTaints,
            Pressure = runtime.Pressure,
        };
        var agent = new NodeAgent(client, nodeOptions, context.Time, context.LoggerFactory.CreateLogger<NodeAgent>());
        await agent.RegisterAsync(cancellationToken);
        await output.WriteLineAsync($"node {settings.NodeName} registered; watching its pods");
        var certificates = settings.BootstrapKubeconfig is null
            ? Task.CompletedTask
            : NodeCertificates.RunAsync(settings, client, clientCertificate, api, output, context.Time, context.LoggerFactory, cancellationToken);

        // Pods deleted while the agent was down leave nothing behind.
        var onNode = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={settings.NodeName}", cancellationToken: cancellationToken);
        AgentRuntime.ForgetPodsExcept(settings, onNode.Items.Select(p => p.Metadata.Uid).ToHashSet(StringComparer.Ordinal));

        var lease = agent.RunAsync(cancellationToken);
        await runtime.RunAsync(new KubernetesPodSource(client, settings.NodeName, context.Time, context.LoggerFactory.CreateLogger<KubernetesPodSource>()), cancellationToken);
        var shutdown = await runtime.StopAsync();
        await lease;
        await certificates;
        await output.WriteLineAsync($"node {settings.NodeName} stopped: {shutdown.Graph.Drained} items drained, {shutdown.UnwrittenReports.Count} reports unwritten");
    }
}
