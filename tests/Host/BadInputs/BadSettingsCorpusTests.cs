namespace Krustlet.Host.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): settings a user can get wrong, in a settings file or as
/// flags. Each stops the agent before it starts anything, with exit code 2 and one message naming the
/// setting, where it came from, what it takes and what it got; the data directory is left as it was.
/// </summary>
[TestClass]
public sealed class BadSettingsCorpusTests
{
    /// <summary>A settings file's content (or null for none), the flags, and the message on stderr.</summary>
    private static readonly (string? File, string[] Flags, string Message)[] Cases =
    [
        ("{\"Pipeline\": {\"Stages\": {\"Run\": {\"Parallelism\": 0}}}}", [], "Pipeline:Stages:Run:Parallelism (from {file}) must be a whole number from 1 to 10000 (got '0')."),
        ("{\"Pipeline\": ", [], "the settings file {file} is not valid JSON: line 1, column 14: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed."),
        ("[1, 2]", [], "the settings file {file} must hold a JSON object."),
        ("{\"Nope\": 1}", [], "{file}: Nope is not a setting (see the README's configuration reference)."),
        ("{\"Node\": {\"MaxPods\": \"many\"}}", [], "Node:MaxPods (from {file}) must be a whole number from 1 to 100000 (got 'many')."),
        (null, ["--config", "/nonexistent/krustlet.json"], "--config /nonexistent/krustlet.json: no such file."),
        (null, ["--port", "70000"], "Server:Port (from --port) must be a whole number from 0 to 65535 (got '70000')."),
        (null, ["--port", "abc"], "Server:Port (from --port) must be a whole number from 0 to 65535 (got 'abc')."),
        (null, ["--set", "Pipeline:Stages:Run:Capacity=-1"], "Pipeline:Stages:Run:Capacity (from --set Pipeline:Stages:Run:Capacity) must be a whole number from 1 to 1000000 (got '-1')."),
        (null, ["--set", "Nope=1"], "--set Nope: not a setting (see the README's configuration reference)."),
        (null, ["--set", "Volumes:SyncFrequency=5parsecs"], "Volumes:SyncFrequency (from --set Volumes:SyncFrequency) must be a positive duration such as 10s, 1m30s, 500ms or 00:00:10 (got '5parsecs')."),
        (null, ["--max-pods", "0"], "Node:MaxPods (from --max-pods) must be a whole number from 1 to 100000 (got '0')."),
        (null, ["--node-ip", "999.1.1.1"], "Node:Ip (from --node-ip) must be an IP address (got '999.1.1.1')."),
        (null, ["--register-with-taint", "bad"], "Node:Taints (from --register-with-taint) 'bad' must be key[=value]:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute."),
        (null, ["--eviction-hard", "disk.free<1Gi"], "Eviction:Hard (from --eviction-hard) 'disk.free' is not an eviction signal (the signals are memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)."),
        (null, ["--eviction-hard", "memory.available<lots"], "Eviction:Hard (from --eviction-hard) 'lots' for memory.available must be a quantity such as 100Mi, 1Gi or 1000, or a percentage such as 10%."),
        (null, ["--set", "Registries:PullCredentialsVerificationPolicy=Sometimes"], "Registries:PullCredentialsVerificationPolicy (from --set Registries:PullCredentialsVerificationPolicy) must be NeverVerifyPreloadedImages, AlwaysVerify or NeverVerify (got 'Sometimes')."),
        (null, ["--node-name", "UPPER_x"], "Node:Name (from --node-name) must be a lower-case DNS subdomain (letters, digits, '-' and '.'), at most 253 characters (got 'UPPER_x')."),
    ];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Every_bad_setting_stops_the_agent_with_exit_2_and_one_message_before_it_starts_anything()
    {
        var root = Directory.CreateTempSubdirectory("krustlet-corpus-settings-").FullName;
        try
        {
            var manifests = Directory.CreateDirectory(Path.Combine(root, "manifests")).FullName;
            var data = Directory.CreateDirectory(Path.Combine(root, "data")).FullName;
            await File.WriteAllTextAsync(Path.Combine(data, "kept"), "state", TestContext.CancellationToken);
            var wrong = new List<string>();
            var messages = new List<string>();
            for (var i = 0; i < Cases.Length; i++)
            {
                var (content, flags, expected) = Cases[i];
                var file = Path.Combine(root, $"settings-{i}.json");
                string[] args = ["standalone", manifests, "--no-table", "--page-port", "-1", "--data-dir", data];
                if (content is not null)
                {
                    await File.WriteAllTextAsync(file, content, TestContext.CancellationToken);
                    args = [.. args, "--config", file];
                }

                using var output = new StringWriter();
                using var error = new StringWriter();
                var code = await Program.BuildCommand(output, error).Parse([.. args, .. flags]).InvokeAsync(cancellationToken: TestContext.CancellationToken);
                var message = error.ToString().ReplaceLineEndings("\n");
                messages.Add(message);
                var want = $"error: invalid settings: {expected.Replace("{file}", file, StringComparison.Ordinal)}\n";
                if (code != 2 || message != want)
                {
                    wrong.Add($"case {i} ({string.Join(' ', flags)}): expected exit 2 and \"{want.TrimEnd()}\", got {code} and \"{message.TrimEnd()}\"");
                }
            }

            Assert.IsEmpty(wrong, string.Join("\n", wrong));
            BadInputMessages.AssertNoneLeaksAnException(messages);
            CollectionAssert.AreEqual(new[] { "kept" }, Directory.GetFileSystemEntries(data).Select(Path.GetFileName).ToArray(), "nothing was started or written");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
