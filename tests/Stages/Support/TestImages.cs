using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.Support;

/// <summary>Pushes hand-made images to a test registry: any config, layers, manifest type and index.</summary>
internal sealed class TestImages(IRegistryClient client, string host, RegistryCredentials? credentials = null)
{
    public sealed record Blob(string MediaType, byte[] Content, string? Title = null)
    {
        public string Digest { get; } = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Content));
    }

    public static string Digest(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>Pushes config and layers and a manifest under <paramref name="tag"/>; returns the manifest bytes.</summary>
    public async Task<byte[]> PushAsync(string repository, string tag, Blob config, IReadOnlyList<Blob> layers, string manifestType = MediaTypes.OciManifest, CancellationToken cancellationToken = default)
    {
        foreach (var blob in layers.Prepend(config))
        {
            await client.PushBlobAsync(host, repository, blob.Digest, () => new MemoryStream(blob.Content), blob.Content.Length, credentials, cancellationToken);
        }

        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = manifestType,
            ["config"] = Descriptor(config),
            ["layers"] = layers.Select(Descriptor).ToArray(),
        });
        await client.PushManifestAsync(host, repository, tag, manifestType, manifest, credentials, cancellationToken);
        return manifest;
    }

    /// <summary>Pushes an index (or manifest list) of already pushed manifests, each with its platform.</summary>
    public async Task PushIndexAsync(string repository, string tag, IReadOnlyList<(byte[] Manifest, string MediaType, string Os, string Architecture)> entries, string indexType = MediaTypes.OciIndex, CancellationToken cancellationToken = default)
    {
        var index = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = indexType,
            ["manifests"] = entries.Select(e => new Dictionary<string, object>
            {
                ["mediaType"] = e.MediaType,
                ["digest"] = Digest(e.Manifest),
                ["size"] = e.Manifest.Length,
                ["platform"] = new Dictionary<string, string> { ["os"] = e.Os, ["architecture"] = e.Architecture },
            }).ToArray(),
        });
        await client.PushManifestAsync(host, repository, tag, indexType, index, credentials, cancellationToken);
    }

    public static Blob WasmConfig() => new(MediaTypes.WasmConfig, JsonSerializer.SerializeToUtf8Bytes(new { os = "wasip1", architecture = "wasm" }));

    public static Blob ImageConfig(string[]? entrypoint = null, string[]? cmd = null, string[]? env = null, string? workingDir = null, string os = "wasip1", string architecture = "wasm", string mediaType = MediaTypes.OciImageConfig) =>
        new(mediaType, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["os"] = os,
            ["architecture"] = architecture,
            ["config"] = new Dictionary<string, object?> { ["Entrypoint"] = entrypoint, ["Cmd"] = cmd, ["Env"] = env, ["WorkingDir"] = workingDir },
            ["rootfs"] = new { type = "layers", diff_ids = Array.Empty<string>() },
        }));

    /// <summary>A tar layer of the given entries; a null content makes a symbolic link to <c>LinkTo</c>.</summary>
    public static Blob TarLayer(IEnumerable<(string Name, byte[]? Content, string? LinkTo)> entries, bool gzip, string? mediaType = null)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content, linkTo) in entries)
            {
                if (content is null)
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = linkTo! });
                }
                else
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
                }
            }
        }

        var bytes = tar.ToArray();
        if (gzip)
        {
            using var compressed = new MemoryStream();
            using (var gz = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                gz.Write(bytes);
            }

            bytes = compressed.ToArray();
        }

        return new Blob(mediaType ?? (gzip ? MediaTypes.OciLayerTarGzip : MediaTypes.OciLayerTar), bytes);
    }

    private static Dictionary<string, object> Descriptor(Blob blob)
    {
        var descriptor = new Dictionary<string, object> { ["mediaType"] = blob.MediaType, ["digest"] = blob.Digest, ["size"] = blob.Content.Length };
        if (blob.Title is not null)
        {
            descriptor["annotations"] = new Dictionary<string, string> { ["org.opencontainers.image.title"] = blob.Title };
        }

        return descriptor;
    }
}
