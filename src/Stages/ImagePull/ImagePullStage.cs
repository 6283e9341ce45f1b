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
/// through the pipeline's per-pod gate (<see cref="IPodStageContext.Reenter"/>).
/// <para>
/// A pull that has to wait on the network does not hold a slot of this stage: the pod is reported
/// waiting (ContainerCreating, "Pulling image ...", as the kubelet shows a pull) and leaves the stage,
/// the pull goes on in the background (<see cref="ImagePuller"/> bounds the pulls in flight per registry),
/// and when it ends the pod is run through the pipeline again and takes its result. So a registry that
/// hangs holds only its own pulls, never the slots other registries' pulls need.
/// </para>
/// </remarks>
public sealed class ImagePullStage(ImagePuller puller, IPodStageContext context, IPodSecretReader? secrets = null, string? nodeCredentialsFile = null, Run.RestartBackoffOptions? backoff = null, TimeProvider? time = null, PodEvents.IPodEventRecorder? events = null) : IStage<V1Pod>
{
    public const string DockerConfigJsonType = "kubernetes.io/dockerconfigjson";
    public const string DockerConfigJsonKey = ".dockerconfigjson";

    private readonly PodRetry _retry = new((context ?? throw new ArgumentNullException(nameof(context))).Reenter, backoff, time);
    private readonly PodEvents.IPodEventRecorder _events = events ?? PodEvents.NullPodEventRecorder.Instance;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Pod, string Image), string> _lastErrors = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Pod, string Image), Task<PulledImage>> _pulling = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Pod, string Image), PulledImage> _pulled = new();

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
        string? waitingOn = null;
        foreach (var container in PodContainers.All(pod))
        {
            if (!ImageReference.TryParse(container.Image, out var image, out var error))
            {
                return StageOutcome.Fail(KubeletReasons.InvalidImageName, $"container {container.Name}: Failed to apply default image tag \"{container.Image}\": couldn't parse image name \"{container.Image}\": {error}");
            }

            if (_retry.IsWaiting(item.Key, container.Image))
            {
                // As the kubelet (1.30+) says it: the back-off keeps the last pull's error.
                var last = _lastErrors.TryGetValue((item.Key, container.Image), out var lastError) ? $": {KubeletReasons.ErrImagePull}: {lastError}" : string.Empty;
                return StageOutcome.Fail(KubeletReasons.ImagePullBackOff, $"container {container.Name}: Back-off pulling image \"{container.Image}\"{last}");
            }

            try
            {
                var key = (item.Key, container.Image);
                if (_pulled.TryGetValue(key, out var already))
                {
                    // Pulled for this pod already: an update of a pod under way (its labels, its status)
                    // pulls nothing again, as the kubelet pulls only to start a container.
                    pulled[container.Name] = already;
                    continue;
                }

                if (!_pulling.TryGetValue(key, out var pull))
                {
                    var credentials = await CredentialsAsync(pod, image, cancellationToken);
                    // Not the item's token: a pull the pod left the stage to wait for goes on without it.
                    pull = puller.PullAsync(image, PolicyFor(container, image), credentials, CancellationToken.None);
                    if (!pull.IsCompleted)
                    {
                        _events.Record(pod, false, KubeletReasons.PullingImage, $"Pulling image \"{container.Image}\"", container.Name);
                        _pulling[key] = pull;
                        var uid = item.Key;
                        _ = pull.ContinueWith(
                            done =>
                            {
                                _ = done.Exception; // observed here: a pod deleted meanwhile never awaits it
                                context.Reenter(uid, "image pull finished");
                            },
                            CancellationToken.None,
                            TaskContinuationOptions.ExecuteSynchronously,
                            TaskScheduler.Default);
                    }
                }

                if (!pull.IsCompleted)
                {
                    // The other containers' pulls start too before the pod leaves the stage.
                    waitingOn ??= $"container {container.Name}: Pulling image \"{container.Image}\"";
                    continue;
                }

                _pulling.TryRemove(key, out _);
                pulled[container.Name] = _pulled[key] = await pull;
                _events.Record(pod, false, KubeletReasons.PulledImage, $"Successfully pulled image \"{container.Image}\"", container.Name);
                _retry.Clear(item.Key, container.Image);
                _lastErrors.TryRemove((item.Key, container.Image), out _);
            }
            catch (ImagePullException ex)
            {
                _events.Record(pod, true, KubeletReasons.FailedToPullImage, $"Failed to pull image \"{container.Image}\": {ex.Message}", container.Name);
                if (ex.Reason == KubeletReasons.ErrImagePull)
                {
                    _lastErrors[(item.Key, container.Image)] = ex.Message;
                    _retry.Schedule(item.Key, container.Image, "image pull backoff expired");

                    // Run the pod again now: within the backoff it reports ImagePullBackOff, as the kubelet does.
                    _retry.ReenterNow(item.Key, "image pull failed");
                }

                return StageOutcome.Fail(ex.Reason, $"container {container.Name}: {ex.Message}");
            }
        }

        if (waitingOn is not null)
        {
            return StageOutcome.Fail(KubeletReasons.ContainerCreating, waitingOn);
        }

        item.Set(new PulledImages(pulled));
        return StageOutcome.Continue;
    }

    /// <summary>Images are shared and outlive pods (unused ones go with <c>krustlet image prune</c>); the pod's backoffs end.</summary>
    public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        _retry.ClearPod(item.Key);
        foreach (var key in _lastErrors.Keys.Where(k => k.Pod == item.Key).ToList())
        {
            _lastErrors.TryRemove(key, out _);
        }

        // A pull under way goes on for whoever else waits on it; this pod no longer does.
        foreach (var key in _pulling.Keys.Where(k => k.Pod == item.Key).ToList())
        {
            _pulling.TryRemove(key, out _);
        }

        foreach (var key in _pulled.Keys.Where(k => k.Pod == item.Key).ToList())
        {
            _pulled.TryRemove(key, out _);
        }

        return ValueTask.FromResult(StageOutcome.Continue);
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

            var secret = await secrets.GetAsync(pod.Namespace(), reference.Name, cancellationToken);
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
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"{source}: {ex.Message}", ex);
        }
    }
}
