using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>
/// Where one image's manifests and blobs are read from: a registry with its mirrors
/// (<see cref="ImagePuller"/>) or an OCI image layout on disk (<see cref="OciLayoutImporter"/>).
/// Failures are <see cref="RegistryException"/> or <see cref="BlobVerificationException"/>.
/// </summary>
internal interface IImageSource
{
    /// <summary>A manifest by tag or digest.</summary>
    Task<ManifestResponse> GetManifestAsync(string reference, CancellationToken cancellationToken);

    /// <summary>A blob's bytes; the resolver verifies their digest and size while storing them.</summary>
    Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken);
}

/// <summary>
/// Turns an image's manifest into an <see cref="ImageRecord"/>, whatever the source: selects the wasm
/// platform of an index, stores the manifests, config and layers (each verified against its descriptor's
/// digest and size), and finds the module: a wasm artifact's layer, or the <c>.wasm</c> file an ordinary
/// image's Entrypoint or Cmd names, extracted safely from its tar layers. Records nothing: the caller
/// decides when the image becomes visible.
/// </summary>
internal sealed class ImageResolver(ContentStore store, RegistryOptions limits, TimeProvider time)
{
    private static readonly string[] WasmOperatingSystems = ["wasip1", "wasip2", "wasi"];
    private static readonly string[] WasmArchitectures = ["wasm", "wasm32"];

    /// <summary>Resolves <paramref name="image"/>; failures are <see cref="ImagePullException"/>s whose message starts "failed to <paramref name="verb"/> image".</summary>
    public async Task<ImageRecord> ResolveAsync(ImageReference image, IImageSource source, string manifestReference, string verb, IProgress<PullProgress>? progress, CancellationToken cancellationToken)
    {
        try
        {
            var manifest = await source.GetManifestAsync(manifestReference, cancellationToken);
            var blobs = new List<string> { await store.PutAsync(manifest.Content, "manifest", cancellationToken) };
            if (MediaTypes.IsIndex(manifest.MediaType))
            {
                var child = SelectWasmPlatform(image, manifest.Content);
                manifest = await source.GetManifestAsync(child, cancellationToken);
                blobs.Add(await store.PutAsync(manifest.Content, "manifest", cancellationToken));
            }

            using var document = JsonDocument.Parse(manifest.Content);
            var root = document.RootElement;
            if (!root.TryGetProperty("config", out var configDescriptor) || !root.TryGetProperty("layers", out var layersElement) || layersElement.ValueKind != JsonValueKind.Array)
            {
                throw new ImagePullException(KubeletReasons.ErrImagePull, $"manifest of {image} ({manifest.MediaType}) has no config and layers");
            }

            var config = Descriptor.From(configDescriptor);
            var layers = layersElement.EnumerateArray().Select(Descriptor.From).ToList();
            await FetchAsync(image, source, config, limits.MaxConfigBytes, progress, cancellationToken);
            blobs.Add(config.Digest);
            JsonDocument configJson;
            try
            {
                configJson = JsonDocument.Parse(await File.ReadAllBytesAsync(store.BlobPath(config.Digest), cancellationToken));
            }
            catch (JsonException ex)
            {
                throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to {verb} image \"{image}\": its config {config.Digest} is not valid JSON: {Krustlet.Pipeline.Diagnostics.JsonErrorText.Describe(ex)}", ex);
            }

            using var configDocument = configJson;

            string moduleDigest;
            string moduleName;
            var defaults = ImageDefaults.None;
            // A wasm config may name its module layers (layerDigests); otherwise the first wasm layer is the module.
            var named = config.MediaType == MediaTypes.WasmConfig && configJson.RootElement.ValueKind == JsonValueKind.Object
                && configJson.RootElement.TryGetProperty("layerDigests", out var layerDigests) && layerDigests.ValueKind == JsonValueKind.Array
                ? layerDigests.EnumerateArray().Select(d => d.GetString()).ToHashSet(StringComparer.Ordinal)
                : null;
            var wasmLayer = layers.FirstOrDefault(l => MediaTypes.IsWasmLayer(l.MediaType) && (named is null || named.Contains(l.Digest)))
                ?? layers.FirstOrDefault(l => MediaTypes.IsWasmLayer(l.MediaType));
            if (wasmLayer is not null)
            {
                await FetchAsync(image, source, wasmLayer, limits.MaxLayerBytes, progress, cancellationToken);
                moduleDigest = wasmLayer.Digest;
                moduleName = wasmLayer.Title ?? $"{image.Repository.Split('/')[^1]}.wasm";
            }
            else if (layers.Count > 0 && layers.All(l => MediaTypes.IsTarLayer(l.MediaType)))
            {
                defaults = ReadImageDefaults(configJson.RootElement);
                foreach (var layer in layers)
                {
                    await FetchAsync(image, source, layer, limits.MaxLayerBytes, progress, cancellationToken);
                    blobs.Add(layer.Digest);
                }

                try
                {
                    (moduleDigest, moduleName, defaults) = await ExtractModuleAsync(image, layers, defaults, cancellationToken);
                }
                catch (ImagePullException ex) when (ex.Message.StartsWith(ImagePullException.NotWasm, StringComparison.Ordinal) && OtherPlatform(configJson.RootElement) is { } platform)
                {
                    throw new ImagePullException(ex.Reason, $"{ex.Message}: its config is for {platform}, not wasm", ex);
                }
            }
            else
            {
                throw new ImagePullException(KubeletReasons.ErrImagePull, $"{ImagePullException.NotWasm}: {image} has layers of types {string.Join(", ", layers.Select(l => l.MediaType).Distinct())}");
            }

            blobs.Add(moduleDigest);
            return new ImageRecord(image.ToString(), blobs[0], moduleDigest, moduleName, defaults, [.. blobs.Distinct()], time.GetUtcNow());
        }
        catch (Exception ex) when (ex is RegistryException or BlobVerificationException)
        {
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to {verb} image \"{image}\": {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            var what = ex is JsonException json ? Krustlet.Pipeline.Diagnostics.JsonErrorText.Describe(json) : ex.Message;
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to {verb} image \"{image}\": malformed manifest or config: {what}", ex);
        }
    }

    /// <summary>
    /// Fetches a blob unless the store has it. Fetches are shared by content digest: a blob in flight for
    /// another image (another tag, the same image by digest, another repository) is waited for, never
    /// fetched twice. A waiter whose shared fetch failed (another pull's registry or credentials) tries
    /// once with its own source, so it never fails for another pull's reason.
    /// </summary>
    private async Task FetchAsync(ImageReference image, IImageSource source, Descriptor blob, long limit, IProgress<PullProgress>? progress, CancellationToken cancellationToken)
    {
        if (store.Has(blob.Digest))
        {
            progress?.Report(new PullProgress(blob.Digest, blob.Size, blob.Size, Done: true));
            return;
        }

        if (blob.Size > limit)
        {
            throw new BlobVerificationException($"blob {blob.Digest} of {image} is {blob.Size} bytes, over the limit of {limit}");
        }

        // The fetch itself never sees a waiter's token: it goes on for whoever waits next.
        var mine = new Lazy<Task>(() => FetchUnlessStoredAsync(image, source, blob, limit, progress, CancellationToken.None));
        var shared = _blobFetches.GetOrAdd(blob.Digest, mine);
        try
        {
            await shared.Value.WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (shared != mine && !cancellationToken.IsCancellationRequested && ex is RegistryException or BlobVerificationException or IOException)
        {
            await FetchUnlessStoredAsync(image, source, blob, limit, progress, cancellationToken);
        }
        finally
        {
            if (shared == mine)
            {
                _blobFetches.TryRemove(new KeyValuePair<string, Lazy<Task>>(blob.Digest, mine));
            }
        }

        progress?.Report(new PullProgress(blob.Digest, blob.Size, blob.Size, Done: true));
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task>> _blobFetches = new(StringComparer.Ordinal);

    private async Task FetchUnlessStoredAsync(ImageReference image, IImageSource source, Descriptor blob, long limit, IProgress<PullProgress>? progress, CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (store.Has(blob.Digest))
        {
            return; // stored by a fetch that ended between our check and this one
        }

        await using var stream = await source.OpenBlobAsync(blob.Digest, cancellationToken);
        await using var counted = new VerifyingStream(stream, blob, progress);
        await store.PutAsync(counted, blob.Digest, limit, $"blob {blob.Digest}", cancellationToken);
    }

    /// <summary>Reports every 4 MiB read, and fails a blob longer or shorter than its descriptor says.</summary>
    private sealed class VerifyingStream(Stream inner, Descriptor blob, IProgress<PullProgress>? progress) : Stream
    {
        private const long Step = 4 * 1024 * 1024;
        private long _reported;

        public long Bytes { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => Bytes; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            Bytes += read;
            if (blob.SizeKnown && (Bytes > blob.Size || (read == 0 && Bytes < blob.Size)))
            {
                throw new BlobVerificationException($"blob {blob.Digest} is {(read == 0 ? Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) : "more than " + blob.Size)} bytes, but its descriptor says {blob.Size}");
            }

            if (progress is not null && Bytes - _reported >= Step)
            {
                _reported = Bytes;
                progress.Report(new PullProgress(blob.Digest, Bytes, blob.Size, Done: false));
            }

            return read;
        }
    }

    private static string SelectWasmPlatform(ImageReference image, byte[] index)
    {
        using var json = JsonDocument.Parse(index);
        var platforms = new List<string>();
        foreach (var entry in json.RootElement.GetProperty("manifests").EnumerateArray())
        {
            var os = entry.TryGetProperty("platform", out var p) && p.TryGetProperty("os", out var o) ? o.GetString() : null;
            var arch = entry.TryGetProperty("platform", out p) && p.TryGetProperty("architecture", out var a) ? a.GetString() : null;
            if (WasmOperatingSystems.Contains(os) && WasmArchitectures.Contains(arch))
            {
                return entry.GetProperty("digest").GetString()!;
            }

            platforms.Add($"{os ?? "?"}/{arch ?? "?"}");
        }

        throw new ImagePullException(KubeletReasons.ErrImagePull, $"{ImagePullException.NotWasm}: {image} is an index with no wasm platform (it has {string.Join(", ", platforms)})");
    }

    // "linux/amd64" for an image config whose platform is not WebAssembly's; null when it is, or says none.
    private static string? OtherPlatform(JsonElement config)
    {
        string? Text(string name) => config.ValueKind == JsonValueKind.Object && config.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        var os = Text("os");
        var architecture = Text("architecture");
        return os is null || WasmOperatingSystems.Contains(os, StringComparer.Ordinal) || (architecture is not null && WasmArchitectures.Contains(architecture, StringComparer.Ordinal))
            ? null
            : $"{os}/{architecture ?? "?"}";
    }

    private static ImageDefaults ReadImageDefaults(JsonElement config)
    {
        if (!config.TryGetProperty("config", out var c) || c.ValueKind != JsonValueKind.Object)
        {
            return ImageDefaults.None;
        }

        static IReadOnlyList<string> Strings(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array ? [.. value.EnumerateArray().Select(v => v.GetString() ?? string.Empty)] : [];

        return new ImageDefaults(
            Strings(c, "Entrypoint"),
            Strings(c, "Cmd"),
            Strings(c, "Env"),
            c.TryGetProperty("WorkingDir", out var wd) && wd.ValueKind == JsonValueKind.String && wd.GetString() is { Length: > 0 } dir ? dir : null);
    }

    // The module is the .wasm file the Entrypoint (or else the Cmd) names, or else the only .wasm file in
    // the image. Every entry of every layer is checked: one that climbs out of the root fails the pull.
    private async Task<(string Digest, string Name, ImageDefaults Defaults)> ExtractModuleAsync(ImageReference image, IReadOnlyList<Descriptor> layers, ImageDefaults defaults, CancellationToken cancellationToken)
    {
        var named = defaults.Entrypoint.Concat(defaults.Cmd).FirstOrDefault(w => w.EndsWith(".wasm", StringComparison.Ordinal));
        var wanted = named is null ? null : Normalize(named, image, "Entrypoint/Cmd");
        string? found = null;
        string? foundDigest = null;
        var wasmFiles = new List<string>();
        foreach (var layer in layers)
        {
            try
            {
                await ScanLayerAsync(layer);
            }
            catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or FormatException)
            {
                // The layer matched its digest, so the image itself holds a broken archive.
                // The archive readers' own messages ("Unable to parse number.") say nothing a user can act on.
                var gzip = MediaTypes.IsGzip(layer.MediaType);
                var archive = gzip ? "gzip-compressed tar archive" : "tar archive";
                var why = ex switch
                {
                    EndOfStreamException => "it ends in the middle of an entry",
                    InvalidDataException when gzip && ex.Message.Contains("compress", StringComparison.OrdinalIgnoreCase) => "its data is not gzip-compressed",
                    _ => gzip ? "its content is not a tar archive (or its gzip data is corrupt)" : "its content is not in tar format",
                };
                throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to pull image \"{image}\": layer {layer.Digest} ({layer.MediaType}) is not a readable {archive}: {why}", ex);
            }
        }

        async Task ScanLayerAsync(Descriptor layer)
        {
            await using var file = File.OpenRead(store.BlobPath(layer.Digest));
            await using Stream content = MediaTypes.IsGzip(layer.MediaType) ? new GZipStream(file, CompressionMode.Decompress) : file;
            await using var tar = new TarReader(content);
            while (await tar.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                var path = Normalize(entry.Name, image, $"layer {layer.Digest}");
                if (!path.EndsWith(".wasm", StringComparison.Ordinal) || (wanted is not null && path != wanted))
                {
                    continue;
                }

                if (entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink)
                {
                    throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to pull image \"{image}\": the module /{path} is a link to {entry.LinkName}; a module must be a regular file");
                }

                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null)
                {
                    continue;
                }

                wasmFiles.Add(path);
                found = path;
                foundDigest = await store.PutAsync(entry.DataStream, null, limits.MaxModuleBytes, $"module /{path}", cancellationToken);
            }
        }

        if (found is null || foundDigest is null)
        {
            var what = wanted is null ? "no .wasm file" : $"no module at /{wanted} (named by its Entrypoint or Cmd)";
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"{ImagePullException.NotWasm}: {image} has {what}");
        }

        if (wanted is null && wasmFiles.Distinct().Count() > 1)
        {
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to pull image \"{image}\": it holds several .wasm files ({string.Join(", ", wasmFiles.Distinct())}) and its Entrypoint and Cmd name none");
        }

        // The module's path becomes argv[0]: move it from Cmd into the Entrypoint when Cmd named it.
        if (defaults.Entrypoint.Count == 0 && defaults.Cmd.Count > 0 && defaults.Cmd[0].EndsWith(".wasm", StringComparison.Ordinal))
        {
            defaults = defaults with { Entrypoint = [defaults.Cmd[0]], Cmd = [.. defaults.Cmd.Skip(1)] };
        }

        return (foundDigest, Path.GetFileName(found), defaults);
    }

    private static string Normalize(string name, ImageReference image, string where)
    {
        var parts = name.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to pull image \"{image}\": {where} has a path that escapes the image root: {name}");
        }

        return string.Join('/', parts);
    }

    private sealed record Descriptor(string MediaType, string Digest, long Size, bool SizeKnown, string? Title)
    {
        public static Descriptor From(JsonElement element) => new(
            element.GetProperty("mediaType").GetString()!,
            element.GetProperty("digest").GetString()!,
            element.TryGetProperty("size", out var size) ? size.GetInt64() : 0,
            element.TryGetProperty("size", out _),
            element.TryGetProperty("annotations", out var annotations) && annotations.TryGetProperty("org.opencontainers.image.title", out var title) ? title.GetString() : null);
    }
}
