using System.CommandLine;
using k8s;
using Krustlet.Stages.Kubernetes;

namespace Krustlet.Host;

/// <summary><c>krustlet record</c>: records this node's pod watch stream from a cluster, for replay in tests.</summary>
internal static class RecordCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var file = new Option<FileInfo>("--output", "-o") { Description = "The .ndjson file to write.", Required = true };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "The kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)." };
        var nodeName = new Option<string>("--node-name") { Description = "Whose pods to record (default: this host's name).", DefaultValueFactory = _ => Environment.MachineName.ToLowerInvariant() };
        var count = new Option<int?>("--count") { Description = "Stop after this many events (default: until interrupted)." };
        var record = new Command("record", "Record the node's pod watch stream in the replay format.") { file, kubeconfig, nodeName, count };
        record.SetAction(async (parse, ct) =>
        {
            try
            {
                using var client = new Kubernetes(KubernetesConnection.Load(parse.GetValue(kubeconfig)));
                var path = parse.GetValue(file)!.FullName;
                await using var writer = new StreamWriter(path);
                var written = await PodStreamRecorder.RecordAsync(client, parse.GetValue(nodeName)!, writer, parse.GetValue(count), TimeProvider.System, ct);
                await output.WriteLineAsync($"recorded {written} events to {path}");
                return 0;
            }
            catch (OperationCanceledException)
            {
                return 0; // interrupted: what was recorded is kept
            }
            catch (Exception ex) when (ex is InvalidOperationException or k8s.Exceptions.KubeConfigException or HttpRequestException or k8s.Autorest.HttpOperationException or IOException)
            {
                await error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
        });
        return record;
    }
}
