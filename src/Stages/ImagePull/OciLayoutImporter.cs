using System.Text.Json;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>An OCI image layout could not be imported; nothing was recorded in the store.</summary>
public sealed class OciLayoutException : Exception
{
    public OciLayoutException(string message)
        : base(message)
    {
    }

    public OciLayoutException()
    {
    }

    public OciLayoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Imports the images of an OCI image layout directory (<c>oci-layout</c>, <c>index.json</c>,
/// <c>blobs/sha256/…</c>) into the <see cref="ContentStore"/>, each under the full reference its
/// <c>org.opencontainers.image.ref.name</c> annotation gives (for example
/// <c>examples.krustlet.dev/hello:v1</c>). The manifests, config and layers go through the same
/// handling as a registry pull, so the <see cref="ImageRecord"/> is the one a pull of the same manifest
/// records. Every blob read is checked against its digest and size. The import is all or nothing: a
/// bad layout or image records no reference (verified blobs it stored are removed by the next prune).
/// </summary>
public sealed class OciLayoutImporter(ContentStore store, RegistryOptions? limits = null, TimeProvider? time = null)
{
    /// <summary>The annotation of an index entry that names its reference.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    private readonly ImageResolver _resolver = new(store, limits ?? new RegistryOptions(), time ?? TimeProvider.System);

    /// <summary>Imports every image the layout's index names; returns their records, in index order.</summary>
    /// <exception cref="OciLayoutException">The layout is malformed, a blob is missing or altered, or an image is not wasm.</exception>
    public async Task<IReadOnlyList<ImageRecord>> ImportAsync(string layoutDirectory, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(layoutDirectory);
        var entries = ReadIndex(layoutDirectory);
        var records = new List<ImageRecord>();
        foreach (var entry in entries)
        {
            try
            {
                records.Add(await _resolver.ResolveAsync(entry.Image, new LayoutSource(layoutDirectory, entry), entry.Digest, "import", progress: null, cancellationToken));
            }
            catch (ImagePullException ex)
            {
                throw new OciLayoutException($"{layoutDirectory}: {ex.Message}", ex);
            }
        }

        foreach (var record in records)
        {
            store.Record(record);
        }

        return records;
    }

    private sealed record IndexEntry(ImageReference Image, string MediaType, string Digest, long? Size);

    private static List<IndexEntry> ReadIndex(string directory)
    {
        var layoutFile = Path.Combine(directory, "oci-layout");
        var indexFile = Path.Combine(directory, "index.json");
        if (!File.Exists(layoutFile) || !File.Exists(indexFile))
        {
            throw new OciLayoutException($"{directory}: not an OCI image layout (it needs an oci-layout file and an index.json)");
        }

        try
        {
            using (var layout = JsonDocument.Parse(File.ReadAllBytes(layoutFile)))
            {
                if (!layout.RootElement.TryGetProperty("imageLayoutVersion", out var version) || version.GetString() != "1.0.0")
                {
                    throw new OciLayoutException($"{layoutFile}: imageLayoutVersion must be \"1.0.0\"");
                }
            }

            using var index = JsonDocument.Parse(File.ReadAllBytes(indexFile));
            if (!index.RootElement.TryGetProperty("manifests", out var manifests) || manifests.ValueKind != JsonValueKind.Array || manifests.GetArrayLength() == 0)
            {
                throw new OciLayoutException($"{indexFile}: has no manifests");
            }

            var entries = new List<IndexEntry>();
            var position = 0;
            foreach (var manifest in manifests.EnumerateArray())
            {
                var where = $"{indexFile}: manifests[{position}]";
                var digest = manifest.TryGetProperty("digest", out var d) ? d.GetString() : null;
                if (digest is null || !manifest.TryGetProperty("mediaType", out var mediaType))
                {
                    throw new OciLayoutException($"{where} has no digest or mediaType");
                }

                var name = manifest.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object && annotations.TryGetProperty(RefNameAnnotation, out var refName) ? refName.GetString() : null;
                if (string.IsNullOrEmpty(name))
                {
                    throw new OciLayoutException($"{where} ({digest}) has no {RefNameAnnotation} annotation: the reference to import it as is unknown");
                }

                // A bare tag ("v1") would parse as docker.io/library/v1: insist on a registry and repository.
                if (!name.Contains('/', StringComparison.Ordinal) || !ImageReference.TryParse(name, out var image, out _))
                {
                    throw new OciLayoutException($"{where} is named \"{name}\", which is not a full image reference (registry/repository:tag)");
                }

                if (entries.Any(e => e.Image == image))
                {
                    throw new OciLayoutException($"{where} names {image} again");
                }

                entries.Add(new IndexEntry(image, mediaType.GetString()!, digest, manifest.TryGetProperty("size", out var size) ? size.GetInt64() : null));
                position++;
            }

            return entries;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new OciLayoutException($"{directory}: malformed oci-layout or index.json: {ex.Message}", ex);
        }
    }

    /// <summary>Blobs of one layout directory, checked against their digests (and the index's size for the top manifest).</summary>
    private sealed class LayoutSource(string directory, IndexEntry entry) : IImageSource
    {
        public async Task<ManifestResponse> GetManifestAsync(string reference, CancellationToken cancellationToken)
        {
            var content = await File.ReadAllBytesAsync(PathOf(reference), cancellationToken);
            var actual = ContentDigest.Of(content);
            if (actual != reference)
            {
                throw new BlobVerificationException($"manifest {reference} has digest {actual}: the layout's blob was altered or corrupted");
            }

            string? mediaType = null;
            if (reference == entry.Digest)
            {
                if (entry.Size is { } size && size != content.Length)
                {
                    throw new BlobVerificationException($"manifest {reference} is {content.Length} bytes, but index.json says {size}");
                }

                mediaType = entry.MediaType;
            }

            using var json = JsonDocument.Parse(content);
            mediaType ??= json.RootElement.TryGetProperty("mediaType", out var own) ? own.GetString() : null;
            return new ManifestResponse(mediaType ?? MediaTypes.OciManifest, actual, content);
        }

        public Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken) =>
            Task.FromResult<Stream>(File.OpenRead(PathOf(digest)));

        private string PathOf(string digest)
        {
            var hex = ContentDigest.Hex(digest);
            var path = Path.Combine(directory, "blobs", "sha256", hex);
            return File.Exists(path) ? path : throw new BlobVerificationException($"blob {digest} is missing from the layout (blobs/sha256/{hex})");
        }
    }
}
