using System.Text;
using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>Reads the secrets a pod names (its imagePullSecrets); the Kubernetes integration implements it against the API.</summary>
public interface IPodSecretReader
{
    ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken);
}

/// <summary>
/// Pulls every container's image (init and app) with the container's pull policy, using the pod's
/// imagePullSecrets or else the node's credentials file. Gives <see cref="PulledImages"/>; a failure
/// is the kubelet's reason (InvalidImageName, ErrImagePull, ErrImageNeverPull) with a precise message.
/// </summary>
/// <remarks>
/// A failed pull starts a backoff for that pod and image (10 s doubling to 300 s, as the kubelet's): the
/// failure is reported as ErrImagePull, the pod is run through the pipeline again at once to report
/// ImagePullBackOff while it waits, and again when the backoff expires to retry the pull. Re-entry goes
/// through the pipeline's per-pod gate (<see cref="UseReentry"/>).
/// </remarks>
public sealed class ImagePullStage(ImagePuller puller, IPodSecretReader? secrets = null, string? nodeCredentialsFile = null, Run.RestartBackoffOptions? backoff = null, TimeProvider? time = null) : IStage<V1Pod>
{
    public const string DockerConfigJsonType = "kubernetes.io/dockerconfigjson";
    public const string DockerConfigJsonKey = ".dockerconfigjson";
    public const string ImagePullBackOff = "ImagePullBackOff";

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Run.RestartBackoffOptions _backoff = backoff ?? new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Uid, string Image), PullBackoff> _backoffs = new();
    private Func<string, string, bool> _reenter = (_, _) => false;

    /// <summary>How the stage asks for a pod to run through the pipeline again (the pipeline's <c>Reenter</c>).</summary>
    public void UseReentry(Func<string, string, bool> reenter) => _reenter = reenter ?? throw new ArgumentNullException(nameof(reenter));

    private sealed class PullBackoff(Run.RestartBackoffOptions options)
    {
        public Run.RestartBackoff Delays { get; } = new(options);

        public DateTimeOffset RetryAt { get; set; }

        public ITimer? Timer { get; set; }
    }

    public string Name => StageNames.ImagePull;

    /// <summary>Kubernetes' default: Always for <c>:latest</c> or no tag, else IfNotPresent.</summary>
    public static PullPolicy PolicyFor(V1Container container, ImageReference image)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(image);
        return container.ImagePullPolicy switch
        {
            "Always" => PullPolicy.Always,
            "IfNotPresent" => PullPolicy.IfNotPresent,
            "Never" => PullPolicy.Never,
            _ => image.IsLatest ? PullPolicy.Always : PullPolicy.IfNotPresent,
        };
    }

    public async ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var pod = item.Value!;
        var pulled = new Dictionary<string, PulledImage>(StringComparer.Ordinal);
        foreach (var container in PodContainers.All(pod))
        {
            if (!ImageReference.TryParse(container.Image, out var image, out var error))
            {
                return StageOutcome.Fail(ImagePullException.InvalidImageName, $"container {container.Name}: Failed to apply default image tag \"{container.Image}\": couldn't parse image name \"{container.Image}\": {error}");
            }

            var key = (item.Key, container.Image);
            if (_backoffs.TryGetValue(key, out var waiting) && _time.GetUtcNow() < waiting.RetryAt)
            {
                return StageOutcome.Fail(ImagePullBackOff, $"container {container.Name}: Back-off pulling image \"{container.Image}\"");
            }

            try
            {
                var credentials = await CredentialsAsync(pod, image, cancellationToken);
                pulled[container.Name] = await puller.PullAsync(image, PolicyFor(container, image), credentials, cancellationToken);
                if (_backoffs.TryRemove(key, out var done))
                {
                    done.Timer?.Dispose();
                }
            }
            catch (ImagePullException ex)
            {
                if (ex.Reason == ImagePullException.ErrImagePull)
                {
                    StartBackoff(item.Key, key);
                }

                return StageOutcome.Fail(ex.Reason, $"container {container.Name}: {ex.Message}");
            }
        }

        item.Set(new PulledImages(pulled));
        return StageOutcome.Continue;
    }

    /// <summary>Images are shared and outlive pods (unused ones go with <c>krustlet image prune</c>); the pod's backoffs end.</summary>
    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        foreach (var key in _backoffs.Keys.Where(k => k.Uid == item.Key))
        {
            if (_backoffs.TryRemove(key, out var backoff))
            {
                backoff.Timer?.Dispose();
            }
        }

        return ValueTask.FromResult(StageOutcome.Continue);
    }

    private void StartBackoff(string uid, (string Uid, string Image) key)
    {
        var backoff = _backoffs.GetOrAdd(key, _ => new PullBackoff(_backoff));
        var delay = backoff.Delays.Next(TimeSpan.Zero);
        backoff.RetryAt = _time.GetUtcNow() + delay;
        backoff.Timer?.Dispose();
        backoff.Timer = _time.CreateTimer(_ => _reenter(uid, "image pull backoff expired"), null, delay, Timeout.InfiniteTimeSpan);

        // Run the pod again now: within the backoff it reports ImagePullBackOff, as the kubelet does.
        _reenter(uid, "image pull failed");
    }

    // The pod's imagePullSecrets in order, then the node's credentials file.
    private async Task<RegistryCredentials?> CredentialsAsync(V1Pod pod, ImageReference image, CancellationToken cancellationToken)
    {
        foreach (var reference in pod.Spec?.ImagePullSecrets ?? [])
        {
            if (secrets is null || string.IsNullOrEmpty(reference.Name))
            {
                continue;
            }

            var secret = await secrets.GetAsync(pod.Metadata.NamespaceProperty ?? "default", reference.Name, cancellationToken);
            if (secret?.Data?.TryGetValue(DockerConfigJsonKey, out var bytes) == true && Parse(Encoding.UTF8.GetString(bytes), image, $"secret {reference.Name}") is { } fromSecret)
            {
                return fromSecret;
            }
        }

        return nodeCredentialsFile is not null && File.Exists(nodeCredentialsFile)
            ? Parse(await File.ReadAllTextAsync(nodeCredentialsFile, cancellationToken), image, $"credentials file {nodeCredentialsFile}")
            : null;
    }

    private static RegistryCredentials? Parse(string json, ImageReference image, string source)
    {
        try
        {
            return DockerConfig.Find(json, image.Registry);
        }
        catch (FormatException ex)
        {
            throw new ImagePullException(ImagePullException.ErrImagePull, $"{source}: {ex.Message}", ex);
        }
    }
}
