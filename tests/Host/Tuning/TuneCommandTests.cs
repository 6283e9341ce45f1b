using System.Text.Json;
using k8s.Models;
using Krustlet.Host.Configuration;
using Krustlet.Host.Tuning;
using Krustlet.Pipeline.Engine;
using Krustlet.Pipeline.Replay;
using Krustlet.Stages;

namespace Krustlet.Host.Tests.Tuning;

/// <summary><c>krustlet tune</c>: real trials of a small burst of the example hello image, and the input it refuses.</summary>
[TestClass]
public sealed class TuneCommandTests
{
    private const string Hello = "examples.krustlet.dev/hello:v1";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Tune_finds_the_expensive_stage_and_recommends_widening_it_in_a_snippet_the_settings_reader_loads()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-tune-test-").FullName;
        try
        {
            var settings = AgentSettingsReader.Read(new SettingsInput(null, new Dictionary<string, string>(), [new RawSetting(SettingsCatalog.DataDir, "test", Text: Path.Combine(dir, "data"))]));
            var snippet = Path.Combine(dir, "tune.json");
            var chart = Path.Combine(dir, "tune.svg");
            var request = new TuneRequest(null, ReplayPace.AsFastAsPossible, 16, Hello, [ExampleFiles.Layout], TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(30), MaxTrials: 4, snippet, chart) { Confirm = 2 };

            // Volume setup costs 150 ms a pod (its real work is a few directories): with its default 4
            // slots, 16 pods take four rounds of it, whatever the other stages do.
            using var output = new StringWriter();
            using var error = new StringWriter();
            var code = await TuneCommand.RunAsync(settings, request, output, error, stages => stages with { VolumeSetup = new ExpensiveStage(stages.VolumeSetup, TimeSpan.FromMilliseconds(150)) }, TestContext.CancellationToken);

            var text = output.ToString();
            TestContext.WriteLine(text);
            Assert.AreEqual(0, code, text + error);
            StringAssert.Contains(text, "tuning with a burst of 16 pods of examples.krustlet.dev/hello:v1");
            StringAssert.Contains(text, "The bottleneck was VolumeSetup: with the starting settings it held pods back in");
            StringAssert.Contains(text, "Kept VolumeSetup Parallelism 4→8");
            StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"best: trial \d \(VolumeSetup Parallelism (8|16), Capacity 128\)"));
            StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"\n\s+1\s+the starting settings\s+yes\s+16/16\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+ MiB\s+[\d.]+\s+[\d.]+\s+VolumeSetup \("), "a row per setting: running, p50, p99, done/s, peak RSS, CPU, bottleneck");
            StringAssert.Contains(error.ToString(), "tune: trial 1: the starting settings ...", "progress goes to stderr");

            // The snippet is a settings file the normal reader loads: it widens volume setup and keeps the rest at their defaults.
            var tuned = AgentSettingsReader.Read(new SettingsInput(snippet, new Dictionary<string, string>(), []));
            Assert.IsGreaterThanOrEqualTo(8, tuned.Pipeline.For(StageNames.VolumeSetup).Parallelism);
            Assert.AreEqual(StageNames.Defaults[StageNames.Admission], tuned.Pipeline.For(StageNames.Admission));
            Assert.AreEqual(StageNames.Defaults[StageNames.Run], tuned.Pipeline.For(StageNames.Run));
            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(snippet, TestContext.CancellationToken));
            Assert.IsTrue(json.RootElement.GetProperty("Pipeline").GetProperty("Stages").TryGetProperty(StageNames.VolumeSetup, out _));

            var svg = await File.ReadAllTextAsync(chart, TestContext.CancellationToken);
            StringAssert.StartsWith(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
            StringAssert.Contains(svg, "1: the starting settings");
            StringAssert.Contains(svg, "recommended settings, confirmation rounds pooled");
            StringAssert.Contains(text, "\nconfirmed: the recommended settings' median Running p99 is");
            StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"\nrecommended: VolumeSetup Parallelism (8|16), Capacity 128\n"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Trials_leave_their_directories_for_the_search_to_delete_at_its_end()
    {
        // Deleting a trial's thousands of pod directories before the next trial made that one's mkdirs
        // slower (ext4 passes over recently freed inodes): each trial measured slower than the one
        // before, whatever its settings. So trials delete nothing; the search deletes them all at its end.
        var dir = Directory.CreateTempSubdirectory("krustlet-tune-test-").FullName;
        try
        {
            var settings = AgentSettingsReader.Read(new SettingsInput(null, new Dictionary<string, string>(), [new RawSetting(SettingsCatalog.DataDir, "test", Text: Path.Combine(dir, "data"))]));
            var store = new Krustlet.Stages.ImagePull.ContentStore(settings.ImagesDirectory);
            await new Krustlet.Stages.ImagePull.OciLayoutImporter(store, settings.Registries).ImportAsync(ExampleFiles.Layout, TestContext.CancellationToken);
            var input = Directory.CreateDirectory(Path.Combine(dir, "input")).FullName;
            var stream = await TuneStream.BurstAsync(3, Hello, settings.NodeName, store, input);
            var scratch = Directory.CreateDirectory(Path.Combine(dir, "scratch")).FullName;

            for (var i = 0; i < 2; i++)
            {
                var trial = await TuneTrial.RunAsync(settings, settings.Pipeline, "same", stream, TimeSpan.FromSeconds(30), null, _ => { }, scratch, TestContext.CancellationToken);
                Assert.IsTrue(trial.Usable, $"trial {i + 1} got its pods running");
            }

            var trials = Directory.GetDirectories(scratch);
            Assert.HasCount(2, trials);
            foreach (var trial in trials)
            {
                Assert.HasCount(3, Directory.GetDirectories(Path.Combine(trial, "pods")), "each trial's pod directories are still there");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task A_missing_stream_exits_2_with_one_message()
    {
        var (code, _, error) = await TuneAsync(["tune", "/nonexistent/stream.ndjson"]);
        Assert.AreEqual(2, code);
        Assert.AreEqual("error: the stream /nonexistent/stream.ndjson does not exist.\n", error);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task A_malformed_stream_exits_2_naming_the_line()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-tune-test-").FullName;
        var stream = Path.Combine(dir, "stream.ndjson");
        const string Bad = "{ not json";
        await File.WriteAllLinesAsync(stream, [Pod("good", Hello), Bad], TestContext.CancellationToken);
        var (code, _, error) = await TuneAsync(["tune", stream, "--data-dir", Path.Combine(dir, "data")]);
        Assert.AreEqual(2, code);
        Assert.AreEqual($"error: the stream {stream} is malformed: line 2: not valid JSON: {JsonMessage(Bad)}; tune plays every line, so fix or remove it.\n", error);
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Images_not_in_the_store_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-tune-test-").FullName;
        var data = Path.Combine(dir, "data");
        var (code, _, error) = await TuneAsync(["tune", "--burst", "3", "--image", "examples.krustlet.dev/absent:v1", "--data-dir", data, "--images", ExampleFiles.Layout]);
        Assert.AreEqual(2, code);
        Assert.AreEqual($"error: the image examples.krustlet.dev/absent:v1 is not in the image store ({Path.Combine(data, "images")}); import or pull it first (--images, `krustlet image import` or `krustlet image pull`): tune pulls from the store only.\n", error);

        var stream = Path.Combine(dir, "stream.ndjson");
        await File.WriteAllLinesAsync(stream, [Pod("a", Hello), Pod("b", "examples.krustlet.dev/absent:v1"), Pod("c", "examples.krustlet.dev/gone:v2")], TestContext.CancellationToken);
        (code, _, error) = await TuneAsync(["tune", stream, "--data-dir", data]);
        Assert.AreEqual(2, code);
        Assert.AreEqual($"error: the images examples.krustlet.dev/absent:v1, examples.krustlet.dev/gone:v2 are not in the image store ({Path.Combine(data, "images")}); import or pull them first (--images, `krustlet image import` or `krustlet image pull`): tune pulls from the store only.\n", error);
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_budget_too_small_for_one_trial_exits_2()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-tune-test-").FullName;
        var (code, output, error) = await TuneAsync(["tune", "--burst", "4", "--image", Hello, "--images", ExampleFiles.Layout, "--data-dir", Path.Combine(dir, "data"), "--budget", "1ms", "--snippet", Path.Combine(dir, "s.json"), "--chart", Path.Combine(dir, "c.svg")]);
        Assert.AreEqual(2, code, output + error);
        Assert.AreEqual("error: --budget 1ms is too small for one trial: the trial of the starting settings had not finished when it ran out.", error.TrimEnd('\n').Split('\n')[^1]);
        Assert.IsFalse(File.Exists(Path.Combine(dir, "s.json")), "no recommendation without a trial");
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Neither_or_both_of_a_stream_and_a_burst_exit_2()
    {
        const string Message = "error: give a recorded stream, or --burst N with --image REFERENCE, not both.\n";
        var (code, _, error) = await TuneAsync(["tune"]);
        Assert.AreEqual(2, code);
        Assert.AreEqual(Message, error);
        (code, _, error) = await TuneAsync(["tune", "--burst", "3"]);
        Assert.AreEqual(2, code);
        Assert.AreEqual(Message, error);
    }

    private async Task<(int Code, string Output, string Error)> TuneAsync(string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Program.BuildCommand(output, error).Parse(args).InvokeAsync(cancellationToken: TestContext.CancellationToken);
        return (code, output.ToString(), error.ToString().ReplaceLineEndings("\n"));
    }

    private static string Pod(string name, string image) =>
        $$$$"""{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"{{{{name}}}}","namespace":"default","uid":"uid-{{{{name}}}}","resourceVersion":"1"},"spec":{"nodeName":"recorded-node","restartPolicy":"Never","containers":[{"name":"main","image":"{{{{image}}}}"}]}}}""";

    private static string JsonMessage(string line)
    {
        try
        {
            using var _ = JsonDocument.Parse(line);
            return string.Empty;
        }
        catch (JsonException ex)
        {
            return Krustlet.Pipeline.Diagnostics.JsonErrorText.Describe(ex, withLine: false);
        }
    }

    /// <summary>A stage made expensive: each apply first waits <paramref name="cost"/>, then does the real stage's work.</summary>
    private sealed class ExpensiveStage(IStage<V1Pod> inner, TimeSpan cost) : IStage<V1Pod>, IDisposable
    {
        public string Name => inner.Name;

        public async ValueTask<StageOutcome> ApplyAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken)
        {
            await Task.Delay(cost, TimeProvider.System, cancellationToken);
            return await inner.ApplyAsync(item, cancellationToken);
        }

        public ValueTask<StageOutcome> TeardownAsync(WorkItem<V1Pod> item, CancellationToken cancellationToken) => inner.TeardownAsync(item, cancellationToken);

        public void Dispose() => (inner as IDisposable)?.Dispose();
    }
}
