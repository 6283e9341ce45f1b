using System.CommandLine;
using k8s;
using Krustlet.Pipeline.Configuration;
using Krustlet.Stages;
using Krustlet.Stages.Admission;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Kubernetes;
using Krustlet.Stages.Run;
using Krustlet.Stages.VolumeSetup;
using Microsoft.Extensions.Configuration;

namespace Krustlet.Host;

/// <summary><c>krustlet node</c>: run as a node agent of a cluster, until interrupted.</summary>
internal static class NodeCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "The kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)." };
        var nodeName = new Option<string>("--node-name") { Description = "The node's name (default: this host's name).", DefaultValueFactory = _ => Environment.MachineName.ToLowerInvariant() };
        var nodeIp = new Option<string>("--node-ip") { Description = "The node's InternalIP.", DefaultValueFactory = _ => "127.0.0.1" };
        var dataDir = new Option<string>("--data-dir") { Description = "Images, compiled modules, pod directories and logs.", DefaultValueFactory = _ => ImageCommands.DefaultDataDirectory };
        var maxPods = new Option<int>("--max-pods") { Description = "Pods this node runs at most.", DefaultValueFactory = _ => 110 };
        var node = new Command("node", "Run as a node agent of a Kubernetes cluster.") { kubeconfig, nodeName, nodeIp, dataDir, maxPods };
        node.SetAction(async (parse, ct) =>
        {
            try
            {
                await RunAsync(parse.GetValue(kubeconfig), parse.GetValue(nodeName)!, parse.GetValue(nodeIp)!, parse.GetValue(dataDir)!, parse.GetValue(maxPods), output, ct);
                return 0;
            }
            catch (Exception ex) when (ex is InvalidOperationException or PipelineConfigurationException or k8s.Exceptions.KubeConfigException)
            {
                await error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
        });
        return node;
    }

    /// <summary>Composes the agent: every stage, the cluster connection, the node's registration and lease.</summary>
    public static async Task RunAsync(string? kubeconfig, string nodeName, string nodeIp, string dataDir, int maxPods, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPods, 1);
        Directory.CreateDirectory(dataDir);
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables("KRUSTLET_").Build();
        var pipelineOptions = PipelineOptionsReader.Read(configuration, StageNames.Defaults);
        var (wasmOptions, wasmProblems) = WasmEngineOptions.Read(configuration);
        var (registryOptions, registryProblems) = RegistryOptions.Read(configuration);
        if (wasmProblems.Count + registryProblems.Count > 0)
        {
            throw new PipelineConfigurationException([.. wasmProblems, .. registryProblems]);
        }

        using var client = new Kubernetes(KubernetesConnection.Load(kubeconfig), new ApiRateLimiter());
        var nodeOptions = new NodeOptions(nodeName, nodeIp, maxPods);
        var agent = new NodeAgent(client, nodeOptions);
        await agent.RegisterAsync(cancellationToken);
        await output.WriteLineAsync($"node {nodeName} registered; watching its pods");

        using var engine = new WasmEngineHost(wasmOptions!);
        using var registry = new OciRegistryClient(registryOptions!);
        using var pool = new ExecutorPool(engine, maxPods);
        await using var events = KubernetesEventRecorder.Start(client, nodeName);
        var resources = new KubernetesPodResources(client);
        var allocatable = agent.Status().Allocatable;
        var nodeAllocatable = new NodeAllocatable(nodeName, maxPods, allocatable["cpu"], allocatable["memory"]);
        await using var pipeline = PodPipeline.Start(
            new PodStages(
                new AdmissionStage(nodeAllocatable),
                new ImagePullStage(new ImagePuller(registry, new ContentStore(Path.Combine(dataDir, "images")), registryOptions!), resources, events: events),
                new CompileStage(new CompileCache(engine, Path.Combine(dataDir, "compile-cache"))),
                new VolumeSetupStage(resources, new VolumeOptions(Path.Combine(dataDir, "pods")) { NodeIp = nodeIp }, nodeAllocatable),
                new RunStage(pool, new RunOptions(Path.Combine(dataDir, "logs")), events: events)),
            new KubernetesPodStatusWriter(client, nodeIp),
            pipelineOptions);

        var lease = agent.RunAsync(cancellationToken);
        try
        {
            await pipeline.RunAsync(new KubernetesPodSource(client, nodeName), cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Interrupted: stop the pods and write their last statuses below.
        }

        var shutdown = await pipeline.StopAsync();
        await lease;
        await output.WriteLineAsync($"node {nodeName} stopped: {shutdown.Graph.Drained} items drained, {shutdown.UnwrittenReports.Count} reports unwritten");
    }
}
