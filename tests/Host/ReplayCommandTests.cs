namespace Krustlet.Host.Tests;

/// <summary><c>krustlet replay</c>: a recorded stream through the real stages, with the example images.</summary>
[TestClass]
public sealed class ReplayCommandTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string Pod(string type, string name, string image, string restartPolicy, string pullPolicy, double offset) =>
        $$$"""{"type":"{{{type}}}","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"{{{name}}}","namespace":"default","uid":"uid-{{{name}}}","resourceVersion":"1"},"spec":{"nodeName":"recorded-node","restartPolicy":"{{{restartPolicy}}}","containers":[{"name":"main","image":"{{{image}}}","imagePullPolicy":"{{{pullPolicy}}}"}]}},"offsetSeconds":{{{offset}}}}""";

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_replay_prints_each_pods_timeline_the_stage_metrics_and_the_skipped_lines()
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-replay-test-").FullName;
        var stream = Path.Combine(dir, "stream.ndjson");
        await File.WriteAllLinesAsync(
            stream,
            [
                Pod("ADDED", "hello", "examples.krustlet.dev/hello:v1", "Never", "IfNotPresent", 0),
                Pod("ADDED", "absent", "examples.krustlet.dev/absent:v1", "Always", "Never", 0.1),
                Pod("ADDED", "crash", "examples.krustlet.dev/crashloop:v1", "Always", "IfNotPresent", 0.2),
                "{ not json",
            ],
            TestContext.CancellationToken);

        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Program.BuildCommand(output, error)
            .Parse(["replay", stream, "--images", ExampleFiles.Layout, "--data-dir", Path.Combine(dir, "data")])
            .InvokeAsync(cancellationToken: TestContext.CancellationToken);

        var text = output.ToString();
        Assert.AreEqual(1, code, "a skipped line makes the replay's exit code 1\n" + text + error);
        StringAssert.Contains(text, "replayed 3 events, 3 pods");
        StringAssert.Contains(text, "skipped line 4: not valid JSON");
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"default/hello \(uid-hello\)\n(.*\n)*?\s+\+\s*[\d.]+s\s+Succeeded\s+main=Terminated\(Completed, 0\)"));
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"default/absent \(uid-absent\)\n\s+\+\s*[\d.]+s\s+Pending\s+ErrImageNeverPull: "));
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"default/crash \(uid-crash\)\n(.*\n)*?.*Running\s+main=Waiting\(CrashLoopBackOff\)"));
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"\nAdmission\s+3\s+0\s+0\s"), "the pods were admitted on the node they were recorded on");
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"\nImagePull\s+3\s+1\s"));
        StringAssert.Contains(text, "StatusReport");
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"through the pipeline in [\d.]+s \([\d,]+ events/s"));
        StringAssert.Contains(text, "events: 3 started at once, 0 waited behind their pod's work item and then ran, 0 coalesced");
        StringAssert.Contains(text, "left at the end: nothing", "the replay says what it left undone, and here that is nothing");
        Assert.IsTrue(Directory.Exists(Path.Combine(dir, "data", "images")), "images stay in the data directory");
        Assert.IsFalse(Directory.Exists(Path.Combine(dir, "data", "logs")), "the replayed pods' logs go to a scratch directory");
        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task A_missing_stream_is_an_error()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Program.BuildCommand(output, error).Parse(["replay", "/nonexistent/stream.ndjson"]).InvokeAsync(cancellationToken: TestContext.CancellationToken);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error.ToString(), "the stream /nonexistent/stream.ndjson does not exist");
    }
}
