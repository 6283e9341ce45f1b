using System.Globalization;
using System.Text.Json.Nodes;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.PodEvents;

namespace Krustlet.Host.Tuning;

/// <summary>Input <c>krustlet tune</c> cannot use; the message is printed as is and the verb exits 2.</summary>
internal sealed class TuneInputException : Exception
{
    public TuneInputException()
        : this("the input cannot be tuned with.")
    {
    }

    public TuneInputException(string message)
        : base(message)
    {
    }

    public TuneInputException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The pods every trial of <c>krustlet tune</c> plays: a recorded stream checked line by line (every line
/// must play: a trial of a stream with holes would tune for pods that are not there) or a generated
/// burst, written once to a scratch file in the replay format. Pull policies are played as
/// <c>IfNotPresent</c> after every image was found in the local store, so trials pull from the store
/// and never from a registry.
/// </summary>
/// <param name="Path">The stream each trial replays.</param>
/// <param name="Description">What it is, for the report.</param>
/// <param name="Pace">How fast each trial replays it.</param>
/// <param name="Pods">The pods in it, by UID.</param>
/// <param name="EventOffsets">Per pod, its first event's time after the start of the replay (zero when played as fast as possible).</param>
/// <param name="WarmUpPath">The first <see cref="WarmUpPods"/> pods' lines, played once before the first trial so that none pays the process's one-time costs (JIT, Wasmtime's first instance).</param>
internal sealed record TuneStream(string Path, string Description, ReplayPace Pace, IReadOnlyList<string> Pods, IReadOnlyDictionary<string, TimeSpan> EventOffsets, string WarmUpPath)
{
    /// <summary>The pods of the warm-up replay.</summary>
    public const int WarmUpPods = 4;

    /// <summary>Checks a recorded stream and its images, and writes the copy the trials play into <paramref name="scratch"/>.</summary>
    public static async Task<TuneStream> FromRecordingAsync(string path, ReplayPace pace, ContentStore store, string scratch, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new TuneInputException($"the stream {path} does not exist.");
        }

        // The replay source reads the stream as every trial will: its problems are the lines a trial would skip.
        var source = WatchStreamReplaySource<V1Pod>.FromFile(path, PodWatchDecoder.Instance);
        var images = new SortedSet<string>(StringComparer.Ordinal);
        var pods = new List<string>();
        await foreach (var change in source.ReadAsync(cancellationToken))
        {
            if (change.Kind == EventKind.Upsert && change.Value is { } pod)
            {
                if (!pods.Contains(change.Key))
                {
                    pods.Add(change.Key);
                }

                foreach (var container in (pod.Spec?.InitContainers ?? []).Concat(pod.Spec?.Containers ?? []))
                {
                    images.Add(container.Image ?? string.Empty);
                }
            }
        }

        if (source.Problems.Count > 0)
        {
            var more = source.Problems.Count > 1 ? string.Create(CultureInfo.InvariantCulture, $" (and {source.Problems.Count - 1} more)") : string.Empty;
            throw new TuneInputException($"the stream {path} is malformed: {source.Problems[0]}{more}; tune plays every line, so fix or remove it.");
        }

        if (pods.Count == 0)
        {
            throw new TuneInputException($"the stream {path} holds no pods.");
        }

        CheckInStore(images, store);
        var copy = System.IO.Path.Combine(scratch, "stream.ndjson");
        var offsets = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        var warmUp = System.IO.Path.Combine(scratch, "warm-up.ndjson");
        await using (var writer = new StreamWriter(copy))
        await using (var warm = new StreamWriter(warmUp))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                var node = JsonNode.Parse(line)!;
                if (node["object"]?["metadata"]?["uid"]?.GetValue<string>() is { } uid && !offsets.ContainsKey(uid))
                {
                    var seconds = pace == ReplayPace.Recorded && node[WatchStreamReplaySource<V1Pod>.OffsetProperty] is JsonValue offset ? offset.GetValue<double>() : 0;
                    offsets[uid] = TimeSpan.FromSeconds(seconds);
                }

                foreach (var list in new[] { "initContainers", "containers" })
                {
                    foreach (var container in node["object"]?["spec"]?[list]?.AsArray() ?? [])
                    {
                        if (container is JsonObject c)
                        {
                            c["imagePullPolicy"] = "IfNotPresent";
                        }
                    }
                }

                var text = node.ToJsonString();
                await writer.WriteLineAsync(text);
                if (node["object"]?["metadata"]?["uid"]?.GetValue<string>() is { } owner && pods.IndexOf(owner) is >= 0 and < WarmUpPods)
                {
                    await warm.WriteLineAsync(text);
                }
            }
        }

        return new TuneStream(copy, $"the recorded stream {path} ({pods.Count} pods, {source.Played} events, {(pace == ReplayPace.Recorded ? "at its recorded pace" : "as fast as the pipeline takes it")})", pace, pods, offsets, warmUp);
    }

    /// <summary>Writes <paramref name="count"/> pods of <paramref name="image"/>, all created at once, as a stream into <paramref name="scratch"/>.</summary>
    public static async Task<TuneStream> BurstAsync(int count, string image, string nodeName, ContentStore store, string scratch)
    {
        if (count <= 0)
        {
            throw new TuneInputException($"--burst {count.ToString(CultureInfo.InvariantCulture)} must be at least 1 pod.");
        }

        var reference = CheckInStore([image], store)[0];
        var path = System.IO.Path.Combine(scratch, "burst.ndjson");
        var pods = new List<string>(count);
        var warmUp = System.IO.Path.Combine(scratch, "warm-up.ndjson");
        await using (var writer = new StreamWriter(path))
        await using (var warm = new StreamWriter(warmUp))
        {
            for (var i = 1; i <= count; i++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"tune-burst-{i:D5}");
                var line = new JsonObject
                {
                    ["type"] = "ADDED",
                    ["object"] = new JsonObject
                    {
                        ["apiVersion"] = "v1",
                        ["kind"] = "Pod",
                        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "default", ["uid"] = name, ["resourceVersion"] = "1" },
                        ["spec"] = new JsonObject
                        {
                            ["nodeName"] = nodeName,
                            ["restartPolicy"] = "Never",
                            ["containers"] = new JsonArray(new JsonObject { ["name"] = "main", ["image"] = reference, ["imagePullPolicy"] = "IfNotPresent" }),
                        },
                    },
                };
                await writer.WriteLineAsync(line.ToJsonString());
                if (i <= WarmUpPods)
                {
                    await warm.WriteLineAsync(line.ToJsonString());
                }

                pods.Add(name);
            }
        }

        return new TuneStream(path, string.Create(CultureInfo.InvariantCulture, $"a burst of {count} pods of {reference}, created at once"), ReplayPace.AsFastAsPossible, pods, pods.ToDictionary(p => p, _ => TimeSpan.Zero, StringComparer.Ordinal), warmUp);
    }

    /// <summary>The images normalised as the image pull stage keys them; every one must be in the store.</summary>
    private static List<string> CheckInStore(IEnumerable<string> images, ContentStore store)
    {
        var keys = new List<string>();
        var missing = new List<string>();
        foreach (var image in images)
        {
            string key;
            try
            {
                key = ImageReference.Parse(image).ToString();
            }
            catch (FormatException ex)
            {
                throw new TuneInputException($"'{image}' is not an image reference: {ex.Message}");
            }

            keys.Add(key);
            if (store.Find(key) is null)
            {
                missing.Add(key);
            }
        }

        return missing.Count switch
        {
            0 => keys,
            1 => throw new TuneInputException($"the image {missing[0]} is not in the image store ({store.Root}); import or pull it first (--images, `krustlet image import` or `krustlet image pull`): tune pulls from the store only."),
            _ => throw new TuneInputException($"the images {string.Join(", ", missing)} are not in the image store ({store.Root}); import or pull them first (--images, `krustlet image import` or `krustlet image pull`): tune pulls from the store only."),
        };
    }
}
