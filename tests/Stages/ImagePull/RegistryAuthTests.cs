using System.Net;
using System.Net.Http.Headers;
using System.Text;
using k8s.Models;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Events;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;

namespace Krustlet.Stages.Tests.ImagePull;

/// <summary>Authentication against a real registry with htpasswd Basic auth, and the Bearer token flow.</summary>
[TestClass]
public sealed class RegistryAuthTests
{
    private static LocalRegistry _registry = null!;
    private static readonly RegistryCredentials Good = new(LocalRegistry.User, LocalRegistry.Password);

    private string _store = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartRegistry(TestContext context) => _registry = await LocalRegistry.StartAsync(basicAuth: true, context.CancellationToken);

    [ClassCleanup]
    public static async Task StopRegistry() => await _registry.DisposeAsync();

    [TestInitialize]
    public void Setup() => _store = Directory.CreateTempSubdirectory("krustlet-store-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_store, recursive: true);

    private async Task<ImageReference> PushAsync(string name)
    {
        using var client = new OciRegistryClient(new RegistryOptions());
        var image = ImageReference.Parse($"{_registry.Host}/{name}-{Guid.NewGuid():N}:v1");
        await WasmArtifactPusher.PushAsync(client, image, WasmFixtures.C("hello"), Good, TestContext.CancellationToken);
        return image;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Basic_auth_pulls_with_credentials_and_says_why_without()
    {
        var image = await PushAsync("private");
        using var client = new OciRegistryClient(new RegistryOptions());
        var puller = new ImagePuller(client, new ContentStore(_store), new RegistryOptions());

        var anonymous = await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken));
        var wrong = await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.Always, new RegistryCredentials(LocalRegistry.User, "nope"), TestContext.CancellationToken));
        var pulled = await puller.PullAsync(image, PullPolicy.Always, Good, TestContext.CancellationToken);

        // The header the good credentials earned is not reused for others: wrong ones still fail after it.
        await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.Always, new RegistryCredentials(LocalRegistry.User, "nope"), TestContext.CancellationToken));
        await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.Always, null, TestContext.CancellationToken));
        StringAssert.Contains(anonymous.Message, "requires authentication (Basic) and no credentials were given");
        StringAssert.Contains(wrong.Message, $"refused the credentials of user {LocalRegistry.User} (401 unauthorized)");
        CollectionAssert.AreEqual(File.ReadAllBytes(WasmFixtures.C("hello")), File.ReadAllBytes(pulled.ModulePath));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_image_pulled_with_credentials_is_used_only_by_pods_whose_own_credentials_the_registry_accepts()
    {
        var image = await PushAsync("tenant");
        var handler = new InspectingHandler();
        using var client = new OciRegistryClient(new RegistryOptions(), handler);
        var puller = new ImagePuller(client, new ContentStore(_store), new RegistryOptions());
        await puller.PullAsync(image, PullPolicy.IfNotPresent, Good, TestContext.CancellationToken);
        var blobs = handler.BlobGets;

        // On the node now; another tenant's wrong credentials, or none, do not get it (KEP-2535).
        var wrong = await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.IfNotPresent, new RegistryCredentials(LocalRegistry.User, "nope"), TestContext.CancellationToken));
        var none = await Assert.ThrowsExactlyAsync<ImagePullException>(() => puller.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken));
        Assert.AreEqual(KubeletReasons.ErrImagePull, wrong.Reason);
        StringAssert.StartsWith(wrong.Message, $"failed to pull image \"{image}\": the image is on the node, but this pod's pull credentials were not accepted for it: ");
        StringAssert.Contains(wrong.Message, $"refused the credentials of user {LocalRegistry.User} (401 unauthorized)");
        StringAssert.StartsWith(none.Message, $"failed to pull image \"{image}\": the image is on the node, but this pod has no pull credentials for it: ");

        // Good credentials of another pod: one manifest request, then remembered; no blob fetched again.
        var manifests = handler.ManifestGets;
        var second = new RegistryCredentials(LocalRegistry.User, LocalRegistry.Password);
        await puller.PullAsync(image, PullPolicy.IfNotPresent, second, TestContext.CancellationToken);
        await puller.PullAsync(image, PullPolicy.IfNotPresent, second, TestContext.CancellationToken);
        Assert.AreEqual(blobs, handler.BlobGets, "verifying fetches no blob");
        Assert.IsLessThanOrEqualTo(manifests + 1, handler.ManifestGets, "the pulling credentials are verified already; a check is remembered");

        // NeverVerify: the kubelet's old behaviour, any pod uses what is on the node.
        var trusting = new ImagePuller(client, new ContentStore(_store), new RegistryOptions { CredentialsVerification = PullCredentialsVerification.NeverVerify });
        await trusting.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_pod_with_good_credentials_never_joins_a_pull_made_without_them()
    {
        var image = await PushAsync("joined");
        using var client = new OciRegistryClient(new RegistryOptions());
        var puller = new ImagePuller(client, new ContentStore(_store), new RegistryOptions());

        // Started together: the anonymous one fails, the one with credentials gets the image either way round.
        var anonymous = puller.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken);
        var withCredentials = puller.PullAsync(image, PullPolicy.IfNotPresent, Good, TestContext.CancellationToken);

        await Assert.ThrowsExactlyAsync<ImagePullException>(() => anonymous);
        var pulled = await withCredentials;
        CollectionAssert.AreEqual(File.ReadAllBytes(WasmFixtures.C("hello")), File.ReadAllBytes(pulled.ModulePath));
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task An_imported_image_is_free_to_use_and_AlwaysVerify_checks_it_too()
    {
        var image = await PushAsync("preloaded");
        using var client = new OciRegistryClient(new RegistryOptions());
        var store = new ContentStore(_store);
        await new ImagePuller(client, store, new RegistryOptions()).PullAsync(image, PullPolicy.IfNotPresent, Good, TestContext.CancellationToken);
        store.Record(store.Find(image.ToString())! with { PulledWithCredentials = false }); // as `krustlet image import` records it

        await new ImagePuller(client, store, new RegistryOptions()).PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken);
        var always = new ImagePuller(client, store, new RegistryOptions { CredentialsVerification = PullCredentialsVerification.AlwaysVerify });
        await Assert.ThrowsExactlyAsync<ImagePullException>(() => always.PullAsync(image, PullPolicy.IfNotPresent, null, TestContext.CancellationToken));
        await always.PullAsync(image, PullPolicy.IfNotPresent, Good, TestContext.CancellationToken);
    }

    /// <summary>A token service in front of the registry: 401 with a Bearer challenge until a token from the realm is presented.</summary>
    private sealed class BearerFront(string registryHost) : DelegatingHandler(new SocketsHttpHandler())
    {
        private const string Token = "token-for-puller";

        public int TokenRequests { get; private set; }

        public string? LastScope { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.Host == "auth.test")
            {
                TokenRequests++;
                LastScope = System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query)["scope"];
                var expected = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Good.Username}:{Good.Password}"));
                return request.Headers.Authorization is { Scheme: "Basic" } basic && basic.Parameter == expected
                    ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent($$"""{"token":"{{Token}}"}""") }
                    : new HttpResponseMessage(HttpStatusCode.Unauthorized);
            }

            if (request.Headers.Authorization is not { Scheme: "Bearer", Parameter: Token })
            {
                var challenge = new HttpResponseMessage(HttpStatusCode.Unauthorized);
                challenge.Headers.WwwAuthenticate.Add(new AuthenticationHeaderValue("Bearer", "realm=\"http://auth.test/token\",service=\"registry.test\",scope=\"repository:x:pull\""));
                return challenge;
            }

            // Accepted: pass on to the real registry, which has its own Basic auth.
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Good.Username}:{Good.Password}")));
            Assert.AreEqual(registryHost, request.RequestUri.Authority);
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_bearer_challenge_is_answered_with_a_token_from_the_realm_and_the_token_is_reused()
    {
        var image = await PushAsync("bearer");
        var front = new BearerFront(_registry.Host);
        using var client = new OciRegistryClient(new RegistryOptions(), front);
        var puller = new ImagePuller(client, new ContentStore(_store), new RegistryOptions());

        await puller.PullAsync(image, PullPolicy.Always, Good, TestContext.CancellationToken);

        Assert.AreEqual(1, front.TokenRequests, "one token serves the manifest and both blobs");
        Assert.AreEqual("repository:x:pull", front.LastScope, "the challenge's scope is asked for");
        var refused = await Assert.ThrowsExactlyAsync<ImagePullException>(() =>
            new ImagePuller(new OciRegistryClient(new RegistryOptions(), new BearerFront(_registry.Host)), new ContentStore(_store), new RegistryOptions())
                .PullAsync(image, PullPolicy.Always, new RegistryCredentials("someone", "else"), TestContext.CancellationToken));
        StringAssert.Contains(refused.Message, "token from auth.test: 401");
    }

    private sealed class Secrets(Dictionary<string, V1Secret> secrets) : IPodSecretReader
    {
        public ValueTask<V1Secret?> GetAsync(string @namespace, string name, CancellationToken cancellationToken) =>
            ValueTask.FromResult(secrets.GetValueOrDefault($"{@namespace}/{name}"));
    }

    private static V1Secret DockerSecret(string json) => new()
    {
        Type = ImagePullStage.DockerConfigJsonType,
        Data = new Dictionary<string, byte[]> { [ImagePullStage.DockerConfigJsonKey] = Encoding.UTF8.GetBytes(json) },
    };

    // As the pipeline runs the stage: a pull that waits on the network leaves it (ContainerCreating) and
    // asks for the pod to be run again when it ends; the test runs it again then.
    private async Task<StageOutcome> PullPodAsync(ImagePullStage stage, RecordingStageContext context, V1Pod pod)
    {
        // Counted before the pass: the pull may end, and ask for the re-entry, before the pass returns.
        var reentries = context.Reentries.Count;
        var outcome = await StageItem.ForAsync(pod, stage, TestContext.CancellationToken);
        while (outcome.Reason == KubeletReasons.ContainerCreating)
        {
            await context.WaitForReentriesAsync(++reentries, TestContext.CancellationToken);
            outcome = await StageItem.ForAsync(pod, stage, TestContext.CancellationToken);
        }

        return outcome;
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    [DataRow("auth")]
    [DataRow("username")]
    [DataRow("node-file")]
    public async Task The_stage_finds_credentials_in_image_pull_secrets_or_the_node_file(string source)
    {
        var image = await PushAsync("secret");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Good.Username}:{Good.Password}"));
        var entry = source == "auth"
            ? new Dictionary<string, object> { [$"http://{_registry.Host}/v2/"] = new { auth } }
            : new Dictionary<string, object> { [_registry.Host] = new { username = Good.Username, password = Good.Password } };
        var json = System.Text.Json.JsonSerializer.Serialize(new { auths = entry });
        var nodeFile = Path.Combine(_store, "node-credentials.json");
        File.WriteAllText(nodeFile, json);
        var secrets = new Secrets(new() { ["default/regcred"] = DockerSecret(json) });
        using var client = new OciRegistryClient(new RegistryOptions());
        var puller = new ImagePuller(client, new ContentStore(_store), new RegistryOptions());
        var context = new RecordingStageContext();
        var stage = source == "node-file" ? new ImagePullStage(puller, context, nodeCredentialsFile: nodeFile) : new ImagePullStage(puller, context, secrets);
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "p", NamespaceProperty = "default", Uid = "u" },
            Spec = new V1PodSpec
            {
                ImagePullSecrets = source == "node-file" ? null : [new V1LocalObjectReference { Name = "regcred" }],
                Containers = [new V1Container { Name = "main", Image = image.ToString() }],
            },
        };

        var outcome = await PullPodAsync(stage, context, pod);

        Assert.AreEqual(StageOutcomeKind.Continue, outcome.Kind, outcome.Message);
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Without_a_matching_secret_the_stage_fails_the_pod_with_ErrImagePull()
    {
        var image = await PushAsync("nosecret");
        using var client = new OciRegistryClient(new RegistryOptions());
        var context = new RecordingStageContext();
        var stage = new ImagePullStage(new ImagePuller(client, new ContentStore(_store), new RegistryOptions()), context, new Secrets([]));
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "p", NamespaceProperty = "default", Uid = "u" },
            Spec = new V1PodSpec { ImagePullSecrets = [new V1LocalObjectReference { Name = "missing" }], Containers = [new V1Container { Name = "main", Image = image.ToString() }] },
        };

        var outcome = await PullPodAsync(stage, context, pod);

        Assert.AreEqual("ErrImagePull", outcome.Reason);
        StringAssert.StartsWith(outcome.Message, $"container main: failed to pull image \"{image}\": ");
    }
}

/// <summary>Runs one stage's apply on a pod through a one-stage pipeline and returns its outcome.</summary>
internal static class StageItem
{
    private sealed class Capture : IResultSink<V1Pod>
    {
        public TaskCompletionSource<WorkResult<V1Pod>> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ValueTask WriteAsync(WorkResult<V1Pod> result, CancellationToken cancellationToken)
        {
            Result.TrySetResult(result);
            return ValueTask.CompletedTask;
        }
    }

    public static async Task<StageOutcome> ForAsync(V1Pod pod, IStage<V1Pod> stage, CancellationToken cancellationToken)
    {
        var sink = new Capture();
        await using var pipeline = new PipelineBuilder<V1Pod>().AddStage(stage).WithSink("Sink", sink).Build(new Krustlet.Pipeline.Configuration.PipelineOptions(new Dictionary<string, Krustlet.Pipeline.Configuration.StageOptions> { [stage.Name] = new(1, 1), ["Sink"] = new(1, 1) }));
        await pipeline.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), cancellationToken);
        var result = await sink.Result.Task.WaitAsync(cancellationToken);
        return result.Failure is { } failure ? StageOutcome.Fail(failure.Reason, failure.Message) : StageOutcome.Continue;
    }
}
