using System.CommandLine;
using System.Security.Cryptography;
using Krustlet.Host.Agent;
using Krustlet.Host.Configuration;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Host.PipelinePage;
using Krustlet.Host.Standalone;
using Krustlet.Stages.Admission;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.PodEvents;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host;

/// <summary>
/// <c>krustlet standalone &lt;dir&gt;</c>: no cluster. Runs the static pod manifests in a directory (as the
/// kubelet's <c>--pod-manifest-path</c>), reacting to files added, changed and removed; shows a live
/// table of the pods and serves their logs through the kubelet API.
/// </summary>
internal static class StandaloneCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var flags = new SettingsFlags();
        var directory = new Argument<DirectoryInfo>("dir") { Description = "The directory of pod manifests (and the ConfigMaps and Secrets they use), YAML or JSON." };
        var images = new Option<string[]>("--images") { Description = "OCI image layout directories to import into the image store first (e.g. examples/images); repeatable." };
        var noTable = new Option<bool>("--no-table") { Description = "Do not draw the live pod table." };
        var command = new Command("standalone", "Run the static pods in a directory, with no cluster.") { directory, images, noTable };
        flags.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (await flags.ReadOrReportAsync(parse, error) is not { } settings)
            {
                return SettingsFlags.InvalidSettingsExitCode;
            }

            if (settings.AuthorizationMode == KubeletAuthorizationMode.Webhook)
            {
                await error.WriteLineAsync($"error: invalid settings: {SettingsCatalog.AuthorizationMode.Key} Webhook asks the API server (SubjectAccessReview), and standalone mode has none: use AlwaysAllow.");
                return SettingsFlags.InvalidSettingsExitCode;
            }

            var dir = parse.GetValue(directory)!;
            if (!dir.Exists)
            {
                await error.WriteLineAsync($"error: the manifest directory {dir.FullName} does not exist.");
                return 2;
            }

            var table = !parse.GetValue(noTable);
            return await AgentHost.RunAsync(
                settings,
                error,
                (context, stop) => RunAsync(settings, dir.FullName, parse.GetValue(images) ?? [], table, output, context, stop),
                ct,
                table ? LogLevel.Warning : LogLevel.Information);
        });
        return command;
    }

    /// <summary>Imports the images, then runs the directory's pods until <paramref name="cancellationToken"/> fires.</summary>
    public static async Task RunAsync(AgentSettings settings, string directory, IReadOnlyList<string> layouts, bool table, TextWriter output, AgentContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(output);
        var store = new ContentStore(settings.ImagesDirectory);
        foreach (var layout in layouts)
        {
            foreach (var image in await new OciLayoutImporter(store, settings.Registries, context.Time).ImportAsync(layout, cancellationToken))
            {
                await output.WriteLineAsync($"imported {image.Reference}");
            }
        }

        var source = new StaticPodSource(directory, settings.NodeName, context.Time, context.LoggerFactory.CreateLogger<StaticPodSource>())
        {
            RescanInterval = settings.FileCheckFrequency,
        };

        // Once the directory has been read, what pods removed while the agent was down left behind goes.
        source.Scanned += Forget;
        void Forget(object? sender, EventArgs e)
        {
            source.Scanned -= Forget;
            AgentRuntime.ForgetPodsExcept(settings, source.Pods.Select(p => p.Metadata.Uid).ToHashSet(StringComparer.Ordinal));
        }

        var services = new AgentServices(source.Resources, null, NullPodEventRecorder.Instance, NodeAllocatable.OfThisMachine(settings.NodeName, settings.MaxPods))
        {
            PodIp = "127.0.0.1", // HTTP handlers listen on loopback here, so probes go there
        };
        await using var runtime = AgentRuntime.Start(settings, services, saveState: true, context.LoggerFactory, context.MeterFactory, context.Time);
        var token = settings.TokenFile is null && settings.ClientCaFile is null ? LocalToken(settings) : null;
        await using var page = PipelinePageHost.Create(runtime, TimeSpan.FromSeconds(1), context.LoggerFactory, context.Time);
        await using var api = await runtime.StartKubeletApiAsync(context.LoggerFactory, context.Time, cancellationToken, token is null ? null : [token.Value.Token], routes: page?.KubeletRoutes);
        await output.WriteLineAsync($"running the pods in {directory} on node {settings.NodeName}; kubelet API on https://{api.Endpoint}");
        if (page is not null)
        {
            await output.WriteLineAsync(await page.StartAsync(api.Endpoint, cancellationToken));
        }
        if (token is { } local)
        {
            await output.WriteLineAsync($"logs: curl -k -H \"Authorization: Bearer $(cat {local.Path})\" https://127.0.0.1:{api.Endpoint.Port}/containerLogs/default/<pod>/<container>");
        }

        using var stopTable = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var drawing = table
            ? new LivePodTable(runtime.Pods.Pods, output, isTerminal: ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected, context.Time).RunAsync(stopTable.Token)
            : Task.CompletedTask;
        await runtime.RunAsync(source, cancellationToken);
        var shutdown = await runtime.StopAsync();
        await stopTable.CancelAsync();
        try
        {
            await drawing;
        }
        catch (OperationCanceledException)
        {
            // the table stops with the agent
        }

        await output.WriteLineAsync($"stopped: {shutdown.Graph.Drained} items drained, {runtime.Pods.Pods().Count} pods will be re-adopted at the next start");
    }

    /// <summary>
    /// With no token file and no client CA configured, standalone mode makes one bearer token for the local
    /// user (<c>&lt;DataDir&gt;/pki/token</c>, owner-only), so its logs can be read without a cluster's certificates.
    /// </summary>
    private static (string Token, string Path)? LocalToken(AgentSettings settings)
    {
        var path = Path.Combine(settings.PkiDirectory, "token");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(settings.PkiDirectory);
            File.WriteAllText(path, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        return (File.ReadAllText(path).Trim(), path);
    }
}
