using System.Security.Cryptography;
using System.Text.Json;

namespace Krustlet.Stages.ImagePull;

/// <summary>What the store remembers of a pulled image.</summary>
/// <param name="Reference">The reference it was pulled as.</param>
/// <param name="ManifestDigest">The image manifest's digest.</param>
/// <param name="ModuleDigest">The module's digest (a stored blob).</param>
/// <param name="ModuleName">The module's file name.</param>
/// <param name="Defaults">The image config's container defaults.</param>
/// <param name="Blobs">Every blob the image holds in the store (manifests, config, layers, module).</param>
/// <param name="PulledAt">When it was pulled.</param>
public sealed record ImageRecord(string Reference, string ManifestDigest, string ModuleDigest, string ModuleName, ImageDefaults Defaults, IReadOnlyList<string> Blobs, DateTimeOffset PulledAt)
{
    /// <summary>
    /// Pulled from a registry with credentials: under the default verification policy a pod may use it
    /// only once its own credentials were accepted for it (KEP-2535). False for an anonymous pull and an
    /// imported (preloaded) image.
    /// </summary>
    public bool PulledWithCredentials { get; init; }
}

/// <summary>A blob did not match its digest or was too large; nothing was stored.</summary>
public sealed class BlobVerificationException : Exception
{
    public BlobVerificationException(string message)
        : base(message)
    {
    }

    public BlobVerificationException()
    {
    }

    public BlobVerificationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The content-addressed image store under the data directory: blobs by digest
/// (<c>blobs/sha256/&lt;hex&gt;</c>), written to a temporary file while their hash is computed and moved
/// into place only once verified, and an index of reference → image (<c>index.json</c>). Safe for
/// concurrent pulls: two writers of one digest write the same bytes, and the move is atomic.
/// </summary>
public sealed class ContentStore
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly string _root;
    private readonly Lock _indexLock = new();

    public ContentStore(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        _root = root;
        Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256"));
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
    }

    public string Root => _root;

    public string BlobPath(string digest) => Path.Combine(_root, "blobs", "sha256", ContentDigest.Hex(digest));

    public bool Has(string digest) => File.Exists(BlobPath(digest));

    /// <summary>
    /// Streams <paramref name="source"/> into the store, verifying its SHA-256 against
    /// <paramref name="expectedDigest"/> (or computing it when null) and its size against
    /// <paramref name="maxBytes"/>. Returns the digest; on any mismatch nothing is stored.
    /// </summary>
    public async Task<string> PutAsync(Stream source, string? expectedDigest, long maxBytes, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (expectedDigest is not null)
        {
            _ = BlobPath(expectedDigest);
        }

        var temp = Path.Combine(_root, "tmp", Guid.NewGuid().ToString("N"));
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = new byte[81920];
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new BlobVerificationException($"{what} is larger than the limit of {maxBytes} bytes");
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                await file.FlushAsync(cancellationToken);
            }

            var actual = ContentDigest.Format(hash.GetHashAndReset());
            if (expectedDigest is not null && actual != expectedDigest)
            {
                throw new BlobVerificationException($"{what} has digest {actual}, expected {expectedDigest}: the content was altered or corrupted");
            }

            File.Move(temp, BlobPath(actual), overwrite: true);
            return actual;
        }
        finally
        {
            File.Delete(temp);
        }
    }

    public Task<string> PutAsync(byte[] content, string what, CancellationToken cancellationToken) =>
        PutAsync(new MemoryStream(content, writable: false), null, content.LongLength, what, cancellationToken);

    public ImageRecord? Find(string reference)
    {
        lock (_indexLock)
        {
            var record = Load().GetValueOrDefault(reference);
            return record is not null && record.Blobs.All(Has) ? record : null;
        }
    }

    public IReadOnlyList<ImageRecord> List()
    {
        lock (_indexLock)
        {
            return [.. Load().Values.OrderBy(r => r.Reference, StringComparer.Ordinal)];
        }
    }

    public void Record(ImageRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_indexLock)
        {
            var index = Load();
            index[record.Reference] = record;
            Save(index);
        }
    }

    /// <summary>Forgets a reference; its blobs go at the next prune.</summary>
    public bool Remove(string reference)
    {
        lock (_indexLock)
        {
            var index = Load();
            var removed = index.Remove(reference);
            Save(index);
            return removed;
        }
    }

    /// <summary>Deletes every blob no recorded image holds; returns their digests.</summary>
    public IReadOnlyList<string> Prune()
    {
        lock (_indexLock)
        {
            var live = Load().Values.SelectMany(r => r.Blobs).ToHashSet(StringComparer.Ordinal);
            var deleted = new List<string>();
            foreach (var path in Directory.EnumerateFiles(Path.Combine(_root, "blobs", "sha256")))
            {
                var digest = "sha256:" + Path.GetFileName(path);
                if (!live.Contains(digest))
                {
                    File.Delete(path);
                    deleted.Add(digest);
                }
            }

            return deleted;
        }
    }

    private string IndexPath => Path.Combine(_root, "index.json");

    private Dictionary<string, ImageRecord> Load() =>
        File.Exists(IndexPath)
            ? JsonSerializer.Deserialize<Dictionary<string, ImageRecord>>(File.ReadAllBytes(IndexPath), Json) ?? []
            : [];

    private void Save(Dictionary<string, ImageRecord> index)
    {
        var temp = Path.Combine(_root, "tmp", $"index-{Guid.NewGuid():N}.json");
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(index, Json));
        File.Move(temp, IndexPath, overwrite: true);
    }
}
