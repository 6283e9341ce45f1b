using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Krustlet.Stages.ImagePull;

/// <summary>What one collection removed.</summary>
/// <param name="Removed">The references forgotten, oldest first.</param>
/// <param name="FreedBytes">The bytes of the blobs deleted with them (blobs another image holds stay).</param>
public sealed record ImageCollection(IReadOnlyList<string> Removed, long FreedBytes);

/// <summary>
/// The kubelet's image garbage collection, run when the node is under DiskPressure: images no pod on the
/// node uses are forgotten, least recently pulled first, and their blobs deleted, until the bytes asked
/// for are freed or no unused image is left. An image a pod uses is never removed, nor a blob another
/// image holds, nor an image pulled or imported less than <paramref name="minimumAge"/> ago (the
/// kubelet's <c>imageMinimumGCAge</c>, 2 minutes: the pods about to use it may not be known yet).
/// </summary>
public sealed partial class ImageCollector(ContentStore store, ILogger? logger = null, TimeProvider? time = null, TimeSpan? minimumAge = null)
{
    /// <summary>The kubelet's default <c>imageMinimumGCAge</c>.</summary>
    public static readonly TimeSpan DefaultMinimumAge = TimeSpan.FromMinutes(2);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly TimeSpan _minimumAge = minimumAge ?? DefaultMinimumAge;
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly Lock _lock = new();

    /// <param name="inUse">The images the node's pods name, as written in their specs.</param>
    /// <param name="bytesNeeded">How much to free; 0 or less: every unused image.</param>
    public ImageCollection Collect(IEnumerable<string> inUse, long bytesNeeded)
    {
        ArgumentNullException.ThrowIfNull(inUse);
        lock (_lock)
        {
            var used = new HashSet<string>(StringComparer.Ordinal);
            foreach (var image in inUse)
            {
                if (ImageReference.TryParse(image, out var reference, out _))
                {
                    used.Add(reference.ToString());
                    if (reference.Tag is null && reference.Digest is null)
                    {
                        used.Add(reference + ":latest"); // the kubelet's default tag
                    }
                }
            }

            var images = store.List();
            var youngest = _time.GetUtcNow() - _minimumAge;
            var kept = images.Where(i => used.Contains(i.Reference) || i.PulledAt > youngest).ToList();
            var removed = new List<string>();
            var remaining = images.ToList();
            long freed = 0;
            foreach (var image in images.Except(kept).OrderBy(i => i.PulledAt))
            {
                if (bytesNeeded > 0 && freed >= bytesNeeded)
                {
                    break;
                }

                // What goes with it: its blobs that no image still recorded holds.
                remaining.Remove(image);
                var held = remaining.SelectMany(i => i.Blobs).ToHashSet(StringComparer.Ordinal);
                var own = image.Blobs.Distinct(StringComparer.Ordinal).Where(b => !held.Contains(b) && store.Has(b)).Sum(b => new FileInfo(store.BlobPath(b)).Length);
                store.Remove(image.Reference);
                removed.Add(image.Reference);
                freed += own;
            }

            if (removed.Count > 0)
            {
                store.Prune();
                Log.Collected(_logger, removed.Count, freed, string.Join(", ", removed));
            }

            return new ImageCollection(removed, freed);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(5210, LogLevel.Warning, "Disk pressure: removed {Count} unused images ({Bytes} bytes): {Images}")]
        public static partial void Collected(ILogger logger, int count, long bytes, string images);
    }
}
