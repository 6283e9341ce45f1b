using k8s.Models;
using Krustlet.Pipeline.Configuration;
using Krustlet.Pipeline.Events;
using Krustlet.Stages;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Host.Tests;

/// <summary><c>krustlet image</c> against a real registry, and a pushed module run by a pod.</summary>
[TestClass]
public sealed class ImageCommandTests
{
    private static LocalRegistry _registry = null!;

    private string _dataDir = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartRegistry(TestContext context) => _registry = await LocalRegistry.StartAsync(basicAuth: false, context.CancellationToken);

    [ClassCleanup]
    public static async Task StopRegistry() => await _registry.DisposeAsync();

    [TestInitialize]
    public void Setup() => _dataDir = Directory.CreateTempSubdirectory("krustlet-data-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_dataDir, recursive: true);

    private async Task<(int Exit, string Output, string Error)> Krustlet(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await Program.BuildCommand(output, error).Parse(args).InvokeAsync(cancellationToken: TestContext.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Push_pull_list_remove_and_prune()
    {
        var module = WasmFixtures.C("hello");
        var reference = $"{_registry.Host}/cli/hello:v1";

        var push = await Krustlet("image", "push", module, reference);
        Assert.AreEqual(0, push.Exit, push.Error);
        StringAssert.StartsWith(push.Output, $"pushed {reference}@sha256:");

        var pull = await Krustlet("image", "pull", reference, "--data-dir", _dataDir);
        Assert.AreEqual(0, pull.Exit, pull.Error);
        StringAssert.Contains(pull.Output, $"pulled {reference}: module hello.wasm {WasmFixtures.Digest(module)} ({new FileInfo(module).Length} bytes)");
        StringAssert.Contains(pull.Output, $"  {WasmFixtures.Digest(module)[..19]}  done  0.0 / 0.0 MiB", "each blob's progress is shown");

        var ls = await Krustlet("image", "ls", "--data-dir", _dataDir);
        StringAssert.StartsWith(ls.Output, $"{reference}\thello.wasm\t{WasmFixtures.Digest(module)}");

        Assert.AreEqual(0, (await Krustlet("image", "rm", reference, "--data-dir", _dataDir)).Exit);
        var prune = await Krustlet("image", "prune", "--data-dir", _dataDir);
        Assert.AreEqual("deleted 3 blobs", prune.Output.Trim(), "the manifest, the config, and the layer that is the module");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Import_stores_the_images_of_an_oci_layout_under_their_ref_names()
    {
        var import = await Krustlet("image", "import", ExampleFiles.Layout, "--data-dir", _dataDir);
        var notLayout = await Krustlet("image", "import", _dataDir, "--data-dir", _dataDir);

        Assert.AreEqual(0, import.Exit, import.Error);
        StringAssert.Contains(import.Output, "imported examples.krustlet.dev/hello:v1: module hello.wasm sha256:");
        Assert.AreEqual(5, import.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, import.Output);
        var ls = await Krustlet("image", "ls", "--data-dir", _dataDir);
        StringAssert.Contains(ls.Output, "examples.krustlet.dev/counter:v1\tcounter.wasm\tsha256:");
        Assert.AreEqual(1, notLayout.Exit);
        Assert.AreEqual($"error: {_dataDir}: not an OCI image layout (it needs an oci-layout file and an index.json)", notLayout.Error.Trim());
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Errors_are_one_clear_line_and_a_non_zero_exit()
    {
        var missing = await Krustlet("image", "pull", $"{_registry.Host}/cli/absent:v1", "--data-dir", _dataDir);
        var badReference = await Krustlet("image", "pull", "Not/Valid", "--data-dir", _dataDir);
        var notWasm = await Krustlet("image", "push", "/etc/hostname", $"{_registry.Host}/cli/x:v1");

        Assert.AreEqual(1, missing.Exit);
        StringAssert.StartsWith(missing.Error, "error: failed to pull image");
        StringAssert.Contains(missing.Error, "MANIFEST_UNKNOWN");
        Assert.AreEqual(1, badReference.Exit);
        StringAssert.Contains(badReference.Error, "a repository name must be lowercase");
        Assert.AreEqual(1, notWasm.Exit);
        StringAssert.Contains(notWasm.Error, "is not a WebAssembly module or component");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_module_pushed_with_the_cli_is_pulled_by_the_stage_and_run_by_a_pod()
    {
        var module = WasmFixtures.C("hello");
        var reference = $"{_registry.Host}/e2e/hello:v1";
        Assert.AreEqual(0, (await Krustlet("image", "push", module, reference)).Exit);

        using var engine = new WasmEngineHost(new WasmEngineOptions());
        using var client = new OciRegistryClient(new RegistryOptions());
        var puller = new ImagePuller(client, new ContentStore(Path.Combine(_dataDir, "images")), new RegistryOptions());
        using var pool = new ExecutorPool(engine, 4);
        var writer = new InMemoryPodReportWriter();
        var done = new TaskCompletionSource<PodReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pipeline = PodPipeline.Start(
            context => new PodStages(new PassStage(StageNames.Admission), new ImagePullStage(puller, context), new CompileStage(new CompileCache(engine, Path.Combine(_dataDir, "cache"))), new PassStage(StageNames.VolumeSetup), new RunStage(pool, new RunOptions(Path.Combine(_dataDir, "logs")), context)),
            new Watching(writer, r => r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed || (r.Kind == PodReportKind.Failed && r.Reason != KubeletReasons.ContainerCreating), done),
            new PipelineOptions(StageNames.Defaults));
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "hello", NamespaceProperty = "default", Uid = "uid-e2e" },
            Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "main", Image = reference, Args = ["from", "a registry"] }] },
        };

        await pipeline.Graph.SubmitAsync(PipelineEvent<V1Pod>.Upsert(pod.Metadata.Uid, pod), TestContext.CancellationToken);
        var final = await done.Task.WaitAsync(TestContext.CancellationToken);

        Assert.AreEqual(PodPhase.Succeeded, final.Runtime?.Phase, final.Message);
        var pulled = new ContentStore(Path.Combine(_dataDir, "images")).Find(ImageReference.Parse(reference).ToString())!;
        CollectionAssert.AreEqual(File.ReadAllBytes(module), File.ReadAllBytes(puller.Store.BlobPath(pulled.ModuleDigest)), "the bytes pulled are the bytes pushed");
        var log = File.ReadAllText(Path.Combine(_dataDir, "logs", "default_hello_uid-e2e", "main", "0.log"));
        StringAssert.Contains(log, "stdout F argv[1]=from");
        StringAssert.Contains(log, "stdout F argv[2]=a registry");
    }

    private sealed class PassStage(string name) : global::Krustlet.Pipeline.Engine.IStage<V1Pod>
    {
        public string Name => name;

        public ValueTask<global::Krustlet.Pipeline.Engine.StageOutcome> ApplyAsync(global::Krustlet.Pipeline.Engine.WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(global::Krustlet.Pipeline.Engine.StageOutcome.Continue);

        public ValueTask<global::Krustlet.Pipeline.Engine.StageOutcome> TeardownAsync(global::Krustlet.Pipeline.Engine.WorkItem<V1Pod> item, CancellationToken cancellationToken) => ValueTask.FromResult(global::Krustlet.Pipeline.Engine.StageOutcome.Continue);
    }

    private sealed class Watching(InMemoryPodReportWriter inner, Func<PodReport, bool> match, TaskCompletionSource<PodReport> seen) : IPodReportWriter
    {
        public async ValueTask WriteAsync(PodReport report, CancellationToken cancellationToken)
        {
            await inner.WriteAsync(report, cancellationToken);
            if (match(report))
            {
                seen.TrySetResult(report);
            }
        }
    }
}
