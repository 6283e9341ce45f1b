using System.CommandLine;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Host;

/// <summary>Reports on the caller's thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary><c>krustlet image push|pull|import|ls|rm|prune</c>: the agent's image store and registries, by hand.</summary>
internal static class ImageCommands
{
    /// <summary>The image store under the data directory.</summary>
    public static string StoreDirectory(string dataDir) => Path.Combine(dataDir, "images");

    public static string DefaultDataDirectory =>
        Environment.GetEnvironmentVariable("KRUSTLET_DATA_DIR") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Configuration.AgentSettingsReader.DefaultDataDirectory;

    public static Command Build(TextWriter output, TextWriter error)
    {
        var dataDir = new Option<string>("--data-dir") { Description = "The agent's data directory (default: $KRUSTLET_DATA_DIR, else ~/.local/share/krustlet).", DefaultValueFactory = _ => DefaultDataDirectory, Recursive = true };
        var username = new Option<string?>("--username") { Description = "Registry user name.", Recursive = true };
        var password = new Option<string?>("--password") { Description = "Registry password (or set KRUSTLET_REGISTRY_PASSWORD).", Recursive = true };
        var insecure = new Option<string[]>("--insecure-registry") { Description = "A registry (host:port) to reach over plain HTTP; loopback always is.", Recursive = true, AllowMultipleArgumentsPerToken = true };

        RegistryCredentials? Credentials(ParseResult parse)
        {
            var user = parse.GetValue(username);
            var pass = parse.GetValue(password) ?? Environment.GetEnvironmentVariable("KRUSTLET_REGISTRY_PASSWORD");
            return user is null ? null : new RegistryCredentials(user, pass ?? string.Empty);
        }

        RegistryOptions Registries(ParseResult parse) => new()
        {
            InsecureRegistries = new HashSet<string>(parse.GetValue(insecure) ?? [], StringComparer.OrdinalIgnoreCase),
        };

        async Task<int> Guard(Func<Task<int>> action)
        {
            try
            {
                return await action();
            }
            catch (Exception ex) when (ex is ImagePullException or OciLayoutException or RegistryException or FormatException or IOException or ArgumentException)
            {
                await error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
        }

        var file = new Argument<FileInfo>("file") { Description = "The .wasm module or component to push." };
        var reference = new Argument<string>("reference") { Description = "Where to push or pull, e.g. registry.example:5000/team/app:v1." };

        var push = new Command("push", "Push a module as a wasm OCI artifact (config, layer, manifest).") { file, reference };
        push.SetAction((parse, ct) => Guard(async () =>
        {
            var image = ImageReference.Parse(parse.GetValue(reference)!);
            using var client = new OciRegistryClient(Registries(parse));
            var digest = await WasmArtifactPusher.PushAsync(client, image, parse.GetValue(file)!.FullName, Credentials(parse), ct);
            await output.WriteLineAsync($"pushed {image}@{digest}");
            return 0;
        }));

        var pullReference = new Argument<string>("reference") { Description = "The image to pull." };
        var pull = new Command("pull", "Pull an image into the agent's store.") { pullReference };
        pull.SetAction((parse, ct) => Guard(async () =>
        {
            var image = ImageReference.Parse(parse.GetValue(pullReference)!);
            var registries = Registries(parse);
            using var client = new OciRegistryClient(registries);
            await output.WriteLineAsync($"pulling {image} ...");
            var progress = new SynchronousProgress<PullProgress>(p => output.WriteLine(
                $"  {p.Digest[..19]}  {(p.Done ? "done" : "....")}  {p.Bytes / 1024.0 / 1024.0:0.0} / {p.Total / 1024.0 / 1024.0:0.0} MiB"));
            var pulled = await new ImagePuller(client, new ContentStore(StoreDirectory(parse.GetValue(dataDir)!)), registries).PullAsync(image, PullPolicy.Always, Credentials(parse), ct, progress);
            await output.WriteLineAsync($"pulled {pulled.Image}: module {pulled.ModuleName} {pulled.Digest} ({new FileInfo(pulled.ModulePath).Length} bytes)");
            return 0;
        }));

        var layout = new Argument<DirectoryInfo>("layout-dir") { Description = "An OCI image layout directory (oci-layout, index.json, blobs/sha256/...)." };
        var import = new Command("import", "Import the images of an OCI image layout into the agent's store, each under its org.opencontainers.image.ref.name.") { layout };
        import.SetAction((parse, ct) => Guard(async () =>
        {
            var importer = new OciLayoutImporter(new ContentStore(StoreDirectory(parse.GetValue(dataDir)!)));
            foreach (var record in await importer.ImportAsync(parse.GetValue(layout)!.FullName, ct))
            {
                await output.WriteLineAsync($"imported {record.Reference}: module {record.ModuleName} {record.ModuleDigest}");
            }

            return 0;
        }));

        var ls = new Command("ls", "List the images in the agent's store.");
        ls.SetAction(parse => Guard(async () =>
        {
            foreach (var record in new ContentStore(StoreDirectory(parse.GetValue(dataDir)!)).List())
            {
                await output.WriteLineAsync($"{record.Reference}\t{record.ModuleName}\t{record.ModuleDigest}\t{record.PulledAt:u}");
            }

            return 0;
        }));

        var rmReference = new Argument<string>("reference") { Description = "The image to forget." };
        var rm = new Command("rm", "Forget an image; its blobs go at the next prune.") { rmReference };
        rm.SetAction(parse => Guard(async () =>
        {
            var image = ImageReference.Parse(parse.GetValue(rmReference)!);
            if (!new ContentStore(StoreDirectory(parse.GetValue(dataDir)!)).Remove(image.ToString()))
            {
                await error.WriteLineAsync($"error: no image {image} in the store");
                return 1;
            }

            await output.WriteLineAsync($"removed {image}");
            return 0;
        }));

        var prune = new Command("prune", "Delete every blob no stored image uses.");
        prune.SetAction(parse => Guard(async () =>
        {
            var deleted = new ContentStore(StoreDirectory(parse.GetValue(dataDir)!)).Prune();
            await output.WriteLineAsync($"deleted {deleted.Count} blobs");
            return 0;
        }));

        return new Command("image", "Push, pull, import, list and remove images.") { dataDir, username, password, insecure, push, pull, import, ls, rm, prune };
    }
}
