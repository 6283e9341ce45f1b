using System.Text.Json;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>
/// Pushes a module as a wasm OCI artifact, as wasm-to-oci and Krustlet did: a
/// <c>application/vnd.wasm.config.v0+json</c> config, one <c>application/vnd.wasm.content.layer.v1+wasm</c>
/// layer titled with the file name, and an OCI image manifest under the reference's tag.
/// </summary>
public static class WasmArtifactPusher
{
    /// <summary>Pushes the module; returns the manifest digest.</summary>
    public static async Task<string> PushAsync(IRegistryClient client, ImageReference image, string modulePath, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(image);
        var info = new FileInfo(modulePath);
        string layerDigest;
        await using (var file = info.OpenRead())
        {
            layerDigest = await ContentDigest.OfAsync(file, cancellationToken);
        }

        var header = new byte[8];
        await using (var file = info.OpenRead())
        {
            await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken);
        }

        var kind = WasmBinary.Detect(header);
        if (kind == WasmBinaryKind.NotWasm)
        {
            throw new ArgumentException($"{modulePath} is not a WebAssembly module or component", nameof(modulePath));
        }

        var config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["os"] = kind == WasmBinaryKind.Component ? "wasip2" : "wasip1",
            ["architecture"] = "wasm",
            ["layerDigests"] = new[] { layerDigest },
        });
        var configDigest = ContentDigest.Of(config);
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = new Dictionary<string, object> { ["mediaType"] = MediaTypes.WasmConfig, ["digest"] = configDigest, ["size"] = config.Length },
            ["layers"] = new[]
            {
                new Dictionary<string, object>
                {
                    ["mediaType"] = MediaTypes.WasmLayer,
                    ["digest"] = layerDigest,
                    ["size"] = info.Length,
                    ["annotations"] = new Dictionary<string, string> { ["org.opencontainers.image.title"] = info.Name },
                },
            },
        });

        await client.PushBlobAsync(image.ApiHost, image.Repository, configDigest, () => new MemoryStream(config), config.Length, credentials, cancellationToken);
        await client.PushBlobAsync(image.ApiHost, image.Repository, layerDigest, info.OpenRead, info.Length, credentials, cancellationToken);
        return await client.PushManifestAsync(image.ApiHost, image.Repository, image.Tag ?? image.ManifestReference, MediaTypes.OciManifest, manifest, credentials, cancellationToken);
    }
}
