using System.Collections.Concurrent;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.ImagePull;

/// <summary>Progress of one blob of a pull: <paramref name="Bytes"/> of <paramref name="Total"/> received.</summary>
public sealed record PullProgress(string Digest, long Bytes, long Total, bool Done);

/// <summary>Kubernetes' imagePullPolicy.</summary>
public enum PullPolicy
{
    Always,
    IfNotPresent,
    Never,
}

/// <summary>A pull failed; <see cref="Reason"/> is the kubelet's reason (ErrImagePull, ErrImageNeverPull, InvalidImageName).</summary>
public sealed class ImagePullException : Exception
{
    public const string NotWasm = "image is not a WebAssembly image";

    public ImagePullException(string reason, string message, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
    }

    public ImagePullException()
        : this(KubeletReasons.ErrImagePull, "the image could not be pulled")
    {
    }

    public ImagePullException(string message)
        : this(KubeletReasons.ErrImagePull, message)
    {
    }

    public ImagePullException(string message, Exception innerException)
        : this(KubeletReasons.ErrImagePull, message, innerException)
    {
    }

    public string Reason { get; }
}

/// <summary>
/// Pulls an image into the <see cref="ContentStore"/> and finds its module: a wasm artifact's layer, or
/// the <c>.wasm</c> file that an ordinary image's Entrypoint or Cmd names, extracted safely from its tar
/// layers. An index or manifest list selects the wasm platform. Concurrent pulls of one reference with
/// the same credentials share one download (a pod never joins a pull made with other credentials, or
/// none). An image already on the node is used by a pod as <see cref="RegistryOptions.CredentialsVerification"/>
/// says: under the default, one pulled with credentials only once the registry accepted the pod's own
/// credentials (or its lack of them) for that manifest, checked with one manifest request and remembered
/// per manifest digest and credential.
/// </summary>
public sealed class ImagePuller(IRegistryClient client, ContentStore store, RegistryOptions options, TimeProvider? time = null)
{
    private readonly ImageResolver _resolver = new(store, options, time ?? TimeProvider.System);
    private readonly ConcurrentDictionary<string, Lazy<Task<PulledImage>>> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _verified = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _perRegistry = new(StringComparer.OrdinalIgnoreCase);

    public ContentStore Store => store;

    /// <summary>Returns the image's module, pulling it as <paramref name="policy"/> says.</summary>
    /// <param name="image">The image.</param>
    /// <param name="policy">When to ask the registry.</param>
    /// <param name="credentials">Credentials for the registry, if any.</param>
    /// <param name="cancellationToken">Stops waiting (a download shared with other callers goes on).</param>
    /// <param name="progress">Told about each blob downloaded (the first caller's, when pulls are shared).</param>
    public async Task<PulledImage> PullAsync(ImageReference image, PullPolicy policy, RegistryCredentials? credentials, CancellationToken cancellationToken, IProgress<PullProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var key = image.ToString();
        if (policy != PullPolicy.Always && store.Find(key) is { } present)
        {
            await VerifyAsync(image, present, credentials, cancellationToken);
            return ToPulled(present);
        }

        if (policy == PullPolicy.Never)
        {
            throw new ImagePullException(KubeletReasons.ErrImageNeverPull, $"Container image \"{key}\" is not present with pull policy of Never");
        }

        Lazy<Task<PulledImage>>? mine = null;
        var flight = $"{key}|{CredentialKey(credentials)}";
        mine = new Lazy<Task<PulledImage>>(() => PullSharedAsync(flight, image, credentials, progress, mine!));
        var pull = _inFlight.GetOrAdd(flight, mine);
        return await pull.Value.WaitAsync(cancellationToken);
    }

    // Runs one shared pull and forgets it when it ends, however its waiters fared.
    private async Task<PulledImage> PullSharedAsync(string key, ImageReference image, RegistryCredentials? credentials, IProgress<PullProgress>? progress, Lazy<Task<PulledImage>> entry)
    {
        try
        {
            return await PullCoreAsync(image, credentials, progress);
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<PulledImage>>>(key, entry));
        }
    }

    private PulledImage ToPulled(ImageRecord record) =>
        new(record.Reference, record.ModuleDigest, store.BlobPath(record.ModuleDigest), record.ModuleName, record.Defaults);

    private async Task<PulledImage> PullCoreAsync(ImageReference image, RegistryCredentials? credentials, IProgress<PullProgress>? progress)
    {
        await Task.Yield();
        var cancellationToken = CancellationToken.None; // a shared pull finishes for whoever waits next

        // At most so many pulls in flight to one registry: one that hangs holds only its own turns.
        var turn = _perRegistry.GetOrAdd(image.Registry, _ => new SemaphoreSlim(Math.Max(1, options.MaxConcurrentPullsPerRegistry)));
        await turn.WaitAsync(cancellationToken);
        try
        {
            return await ResolveAndRecordAsync(image, credentials, progress, cancellationToken);
        }
        finally
        {
            turn.Release();
        }
    }

    private async Task<PulledImage> ResolveAndRecordAsync(ImageReference image, RegistryCredentials? credentials, IProgress<PullProgress>? progress, CancellationToken cancellationToken)
    {
        var source = new RegistrySource(client, image, credentials, options.Mirrors.GetValueOrDefault(image.Registry) ?? []);
        var record = await _resolver.ResolveAsync(image, source, image.ManifestReference, "pull", progress, cancellationToken) with { PulledWithCredentials = credentials is not null };
        store.Record(record);
        _verified[$"{record.ManifestDigest}|{CredentialKey(credentials)}"] = true;
        return ToPulled(record);
    }

    // KEP-2535: an image on the node is this pod's to use once the registry accepted its credentials
    // (or their absence) for that manifest; the answer is remembered per manifest digest and credential.
    private async Task VerifyAsync(ImageReference image, ImageRecord present, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var needed = options.CredentialsVerification switch
        {
            PullCredentialsVerification.AlwaysVerify => true,
            PullCredentialsVerification.NeverVerifyPreloadedImages => present.PulledWithCredentials,
            _ => false,
        };
        var cacheKey = $"{present.ManifestDigest}|{CredentialKey(credentials)}";
        if (!needed || _verified.ContainsKey(cacheKey))
        {
            return;
        }

        try
        {
            await new RegistrySource(client, image, credentials, options.Mirrors.GetValueOrDefault(image.Registry) ?? []).GetManifestAsync(present.ManifestDigest, cancellationToken);
        }
        catch (Exception ex) when (ex is RegistryException or BlobVerificationException)
        {
            var whose = credentials is null ? "this pod has no pull credentials for it" : "this pod's pull credentials were not accepted for it";
            throw new ImagePullException(KubeletReasons.ErrImagePull, $"failed to pull image \"{image}\": the image is on the node, but {whose}: {ex.Message}", ex);
        }

        _verified[cacheKey] = true;
    }

    private static string CredentialKey(RegistryCredentials? credentials) => credentials?.Fingerprint ?? "anonymous";

    /// <summary>
    /// One image on a registry: the first manifest is asked of the mirrors first, then the registry
    /// itself; whichever answered serves the rest of the image.
    /// </summary>
    private sealed class RegistrySource(IRegistryClient client, ImageReference image, RegistryCredentials? credentials, IReadOnlyList<string> mirrors) : IImageSource
    {
        private string? _host;

        public async Task<ManifestResponse> GetManifestAsync(string reference, CancellationToken cancellationToken)
        {
            if (_host is not null)
            {
                return await client.GetManifestAsync(_host, image.Repository, reference, credentials, cancellationToken);
            }

            foreach (var mirror in mirrors)
            {
                try
                {
                    var fromMirror = await client.GetManifestAsync(mirror, image.Repository, reference, credentials, cancellationToken);
                    _host = mirror;
                    return fromMirror;
                }
                catch (RegistryException)
                {
                    // Try the next mirror, then the registry.
                }
            }

            var manifest = await client.GetManifestAsync(image.ApiHost, image.Repository, reference, credentials, cancellationToken);
            _host = image.ApiHost;
            return manifest;
        }

        public Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken) =>
            client.OpenBlobAsync(_host ?? image.ApiHost, image.Repository, digest, credentials, cancellationToken);
    }
}
