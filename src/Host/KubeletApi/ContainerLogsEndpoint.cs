using System.Text;
using k8s.Models;
using Krustlet.Stages;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Host.KubeletApi;

/// <summary>
/// <c>GET /containerLogs/{namespace}/{pod}/{container}</c>: a container's log as <c>kubectl logs</c>
/// reads it through the API server, with follow, tailLines, timestamps, sinceSeconds/sinceTime,
/// limitBytes and previous.
/// </summary>
internal sealed class ContainerLogsEndpoint(IKubeletPods pods, string logRoot, TimeProvider time, TimeSpan pollInterval)
{
    public async Task HandleAsync(HttpContext context, string ns, string podName, string containerName, CancellationToken cancellationToken)
    {
        var (query, error) = ContainerLogQuery.Parse(context.Request.Query);
        if (query is null)
        {
            await KubeletServer.WriteTextAsync(context, StatusCodes.Status400BadRequest, error, cancellationToken);
            return;
        }

        var pod = Find(ns, podName);
        if (pod is null)
        {
            await KubeletServer.WriteTextAsync(context, StatusCodes.Status404NotFound, $"pod \"{ns}/{podName}\" not found on this node", cancellationToken);
            return;
        }

        var names = ContainerNames(pod);
        if (!names.Contains(containerName, StringComparer.Ordinal))
        {
            await KubeletServer.WriteTextAsync(
                context,
                StatusCodes.Status404NotFound,
                $"container \"{containerName}\" not found in pod \"{ns}/{podName}\"; its containers are: {string.Join(", ", names)}",
                cancellationToken);
            return;
        }

        var uid = pod.Metadata.Uid;
        if (!TryContainerDirectory(logRoot, ns, podName, uid, containerName, out var directory))
        {
            // A pod whose names were refused at admission never ran, so it has no log; and no name may lead outside the log root.
            await KubeletServer.WriteTextAsync(context, StatusCodes.Status400BadRequest, $"container \"{containerName}\" in pod \"{ns}/{podName}\" has no log: its names are not valid", cancellationToken);
            return;
        }

        var runs = RunLogReader.Runs(directory);
        if (runs.Count == 0 || (query.Previous && runs.Count < 2))
        {
            var message = query.Previous
                ? $"previous terminated container \"{containerName}\" in pod \"{ns}/{podName}\" not found"
                : $"container \"{containerName}\" in pod \"{ns}/{podName}\" has no log yet: {Waiting(Status(pod, containerName))}";
            await KubeletServer.WriteTextAsync(context, StatusCodes.Status400BadRequest, message, cancellationToken);
            return;
        }

        var run = query.Previous ? runs[^2] : runs[^1];
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/plain; charset=utf-8";
        using var reader = new RunLogReader(RunLogReader.RunPath(directory, run));
        var output = new LogOutput(context.Response.Body, query);
        var assembler = new LogLineAssembler();
        var since = query.Since(time.GetUtcNow());

        // What is there now, with tailLines applied, then (with follow) what the run writes next.
        var tail = query.TailLines is { } n ? new Queue<LogLine>() : null;
        var entries = new List<CriLogEntry>();
        while (reader.ReadNext(entries))
        {
            foreach (var line in Lines(entries, assembler, since))
            {
                if (tail is null)
                {
                    if (!await output.WriteAsync(line, cancellationToken))
                    {
                        return;
                    }
                }
                else if (query.TailLines > 0)
                {
                    if (tail.Count == query.TailLines)
                    {
                        tail.Dequeue();
                    }

                    tail.Enqueue(line);
                }
            }
        }

        foreach (var line in tail ?? [])
        {
            if (!await output.WriteAsync(line, cancellationToken))
            {
                return;
            }
        }

        if (query.Follow)
        {
            await FollowAsync(reader, assembler, output, since, new FollowedRun(ns, podName, uid, containerName, directory, run), cancellationToken);
        }
        else
        {
            foreach (var line in assembler.Flush())
            {
                await output.WriteAsync(line, cancellationToken);
            }
        }

        await output.FlushAsync(cancellationToken);
    }

    private async Task FollowAsync(RunLogReader reader, LogLineAssembler assembler, LogOutput output, DateTimeOffset? since, FollowedRun run, CancellationToken cancellationToken)
    {
        await output.FlushAsync(cancellationToken);
        var entries = new List<CriLogEntry>();
        while (!cancellationToken.IsCancellationRequested)
        {
            // Whether the run ended is decided before the last read, so nothing written before its end is missed.
            var ended = Ended(run);
            var progressed = false;
            while (reader.ReadNext(entries))
            {
                progressed = true;
                foreach (var line in Lines(entries, assembler, since))
                {
                    if (!await output.WriteAsync(line, cancellationToken))
                    {
                        return;
                    }
                }
            }

            if (progressed)
            {
                await output.FlushAsync(cancellationToken);
            }

            if (ended)
            {
                foreach (var line in assembler.Flush())
                {
                    await output.WriteAsync(line, cancellationToken);
                }

                return;
            }

            await Task.Delay(pollInterval, time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>The run is over: its pod is gone, the container stopped or restarted, or a newer run's log exists.</summary>
    private bool Ended(FollowedRun run)
    {
        var pod = Find(run.Namespace, run.Pod);
        if (pod is null || pod.Metadata.Uid != run.Uid)
        {
            return true;
        }

        if (File.Exists(RunLogReader.RunPath(run.Directory, run.Number + 1)))
        {
            return true;
        }

        return Status(pod, run.Container) is { } status && (status.State?.Running is null || status.RestartCount > run.Number);
    }

    private static List<LogLine> Lines(List<CriLogEntry> entries, LogLineAssembler assembler, DateTimeOffset? since)
    {
        var lines = new List<LogLine>();
        foreach (var entry in entries)
        {
            if (assembler.Add(entry) is { } line && (since is null || line.Time >= since))
            {
                lines.Add(line);
            }
        }

        entries.Clear();
        return lines;
    }

    private V1Pod? Find(string ns, string name) =>
        pods.Pods().FirstOrDefault(p => p.Metadata?.Name == name && p.Namespace() == ns);

    private static bool TryContainerDirectory(string logRoot, string ns, string podName, string uid, string container, out string directory)
    {
        try
        {
            directory = Stages.Run.PodLogLayout.ContainerDirectory(logRoot, ns, podName, uid, container);
            return true;
        }
        catch (Stages.UnsafePathException)
        {
            directory = string.Empty;
            return false;
        }
    }

    private static List<string> ContainerNames(V1Pod pod) =>
        [.. (pod.Spec?.InitContainers ?? []).Select(c => c.Name), .. (pod.Spec?.Containers ?? []).Select(c => c.Name)];

    private static V1ContainerStatus? Status(V1Pod pod, string container) =>
        (pod.Status?.InitContainerStatuses ?? []).Concat(pod.Status?.ContainerStatuses ?? []).FirstOrDefault(s => s.Name == container);

    private static string Waiting(V1ContainerStatus? status) =>
        status?.State?.Waiting is { } waiting ? $"it is waiting to start: {waiting.Reason}" : "it has not started";

    private sealed record FollowedRun(string Namespace, string Pod, string Uid, string Container, string Directory, int Number);

    /// <summary>Writes lines as the kubelet does (timestamps optional), stopping at limitBytes.</summary>
    private sealed class LogOutput(Stream body, ContainerLogQuery query)
    {
        private long _left = query.LimitBytes ?? long.MaxValue;

        public async ValueTask<bool> WriteAsync(LogLine line, CancellationToken cancellationToken)
        {
            var bytes = query.Timestamps
                ? [.. Encoding.ASCII.GetBytes(line.Timestamp + " "), .. line.Text, (byte)'\n']
                : (byte[])[.. line.Text, (byte)'\n'];
            var count = (int)Math.Min(bytes.Length, _left);
            await body.WriteAsync(bytes.AsMemory(0, count), cancellationToken);
            _left -= count;
            return _left > 0;
        }

        public Task FlushAsync(CancellationToken cancellationToken) => body.FlushAsync(cancellationToken);
    }
}
