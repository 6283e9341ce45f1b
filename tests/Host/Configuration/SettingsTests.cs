using Krustlet.Host.Configuration;

namespace Krustlet.Host.Tests.Configuration;

/// <summary>The settings: file, environment and flags, their precedence, and validation that lists every problem.</summary>
[TestClass]
public sealed class SettingsTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    private static AgentSettings Read(string? file = null, Dictionary<string, string>? environment = null, params string[] flags)
    {
        var settingsFlags = new SettingsFlags();
        var command = new System.CommandLine.RootCommand();
        settingsFlags.AddTo(command);
        var parse = command.Parse(file is null ? flags : ["--config", file, .. flags]);
        Assert.AreEqual(0, parse.Errors.Count, string.Join("; ", parse.Errors.Select(e => e.Message)));
        return settingsFlags.Read(parse, environment ?? NoEnvironment);
    }

    private static string WriteFile(string json)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("krustlet-settings-").FullName, "settings.json");
        File.WriteAllText(path, json);
        return path;
    }

    [TestMethod]
    public void With_nothing_given_every_setting_has_its_documented_default()
    {
        var settings = Read();
        Assert.AreEqual(110, settings.MaxPods);
        Assert.AreEqual(10250, settings.ServerPort);
        Assert.AreEqual("0.0.0.0", settings.ServerAddress.ToString());
        Assert.AreEqual(10L * 1024 * 1024, settings.LogRotation.MaxSizeBytes);
        Assert.AreEqual(5, settings.LogRotation.MaxFiles);
        Assert.AreEqual(TimeSpan.FromSeconds(10), settings.Backoff.Initial);
        Assert.AreEqual(TimeSpan.FromMinutes(5), settings.Backoff.Max);
        Assert.AreEqual(TimeSpan.FromMinutes(10), settings.Backoff.ResetAfter);
        Assert.AreEqual(50, settings.ApiQps);
        Assert.AreEqual(100, settings.ApiBurst);
        Assert.AreEqual(TimeSpan.FromSeconds(30), settings.Pipeline.ShutdownTimeout);
        Assert.AreEqual(TimeSpan.FromSeconds(20), settings.FileCheckFrequency);
        Assert.AreEqual(TimeSpan.FromMinutes(1), settings.SyncFrequency, "the kubelet's syncFrequency");
        Assert.AreEqual(Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict, settings.EmptyDirSizeLimit);
        Assert.AreEqual(Environment.MachineName.ToLowerInvariant(), settings.NodeName);
        Assert.AreEqual(AgentSettingsReader.DefaultDataDirectory, settings.DataDir);
        Assert.IsNull(settings.TlsCertFile);
        Assert.IsEmpty(settings.AllowedHostPathPrefixes);
        Assert.IsEmpty(settings.Registries.InsecureRegistries);
        CollectionAssert.AreEqual(new[] { "NoSchedule", "NoExecute" }, settings.NodeTaints.Select(t => t.Effect).ToArray());
        foreach (var (stage, options) in Stages.StageNames.Defaults)
        {
            Assert.AreEqual(options, settings.Pipeline.For(stage), stage);
        }
    }

    [TestMethod]
    public void Flags_win_over_the_environment_which_wins_over_the_file()
    {
        var file = WriteFile("""{ "Node": { "MaxPods": 50, "Name": "from-file" }, "Pipeline": { "Stages": { "Run": { "Parallelism": 3 } } } }""");
        var environment = new Dictionary<string, string> { ["KRUSTLET_NODE__MAX_PODS"] = "60", ["KRUSTLET_PIPELINE__STAGES__RUN__PARALLELISM"] = "5" };

        var fromFile = Read(file);
        Assert.AreEqual(50, fromFile.MaxPods);
        Assert.AreEqual("from-file", fromFile.NodeName);
        Assert.AreEqual(3, fromFile.Pipeline.For("Run").Parallelism);

        var fromEnvironment = Read(file, environment);
        Assert.AreEqual(60, fromEnvironment.MaxPods);
        Assert.AreEqual("from-file", fromEnvironment.NodeName, "a setting the environment does not give keeps the file's value");
        Assert.AreEqual(5, fromEnvironment.Pipeline.For("Run").Parallelism);

        var fromFlags = Read(file, environment, "--max-pods", "70", "--set", "Pipeline:Stages:Run:Parallelism=7");
        Assert.AreEqual(70, fromFlags.MaxPods);
        Assert.AreEqual(7, fromFlags.Pipeline.For("Run").Parallelism);
    }

    [TestMethod]
    public void Environment_names_are_the_keys_in_upper_snake_case()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "krustlet-env-data");
        var settings = Read(environment: new Dictionary<string, string>
        {
            ["KRUSTLET_DATA_DIR"] = dataDir,
            ["KRUSTLET_NODE__IP"] = "10.1.2.3",
            ["KRUSTLET_LOGS__MAX_SIZE"] = "2Mi",
            ["KRUSTLET_NODE__MAX_CONTAINERS_PER_POD"] = "8",
            ["KRUSTLET_WASM__MAX_CONTAINER_MEMORY"] = "64Mi",
            ["KRUSTLET_BACKOFF__INITIAL"] = "1m30s",
            ["KRUSTLET_NODE__LABELS"] = "team=wasm,tier=edge",
            ["KRUSTLET_REGISTRIES__INSECURE"] = "registry.lan:5000, other.lan",
            ["KRUSTLET_REGISTRY_PASSWORD"] = "not a setting, read by the image verbs",
            ["PATH"] = "/usr/bin",
        });
        Assert.AreEqual(dataDir, settings.DataDir);
        Assert.AreEqual("10.1.2.3", settings.NodeIp);
        Assert.AreEqual(2L * 1024 * 1024, settings.LogRotation.MaxSizeBytes);
        Assert.AreEqual(8, settings.MaxContainersPerPod);
        Assert.AreEqual(64L * 1024 * 1024, settings.Wasm.MaxContainerMemory);
        Assert.AreEqual(TimeSpan.FromSeconds(90), settings.Backoff.Initial);
        Assert.AreEqual("edge", settings.NodeLabels["tier"]);
        Assert.IsTrue(settings.Registries.InsecureRegistries.SetEquals(["registry.lan:5000", "other.lan"]));
        Assert.AreEqual("KRUSTLET_PIPELINE__STAGES__IMAGE_PULL__CAPACITY", SettingsCatalog.Find("Pipeline:Stages:ImagePull:Capacity")!.EnvironmentVariable);
        Assert.AreEqual("KRUSTLET_SERVER__TLS_CERT_FILE", SettingsCatalog.Find("Server:TlsCertFile")!.EnvironmentVariable);
    }

    [TestMethod]
    public void Lists_and_maps_come_as_json_from_the_file_and_as_repeated_flags()
    {
        var file = WriteFile("""
            {
              // comments are allowed
              "Node": { "Labels": { "example.com/team": "wasm" }, "Taints": ["dedicated=wasm:NoSchedule"] },
              "Registries": { "Mirrors": { "docker.io": ["mirror.lan:5000", "mirror2.lan"] } },
              "Volumes": { "AllowedHostPathPrefixes": ["/srv/data"] },
            }
            """);
        var settings = Read(file);
        Assert.AreEqual("wasm", settings.NodeLabels["example.com/team"]);
        Assert.AreEqual("dedicated", settings.NodeTaints.Single().Key);
        Assert.AreEqual("wasm", settings.NodeTaints.Single().Value);
        CollectionAssert.AreEqual(new[] { "mirror.lan:5000", "mirror2.lan" }, settings.Registries.Mirrors["docker.io"].ToArray());
        CollectionAssert.AreEqual(new[] { "/srv/data" }, settings.AllowedHostPathPrefixes.ToArray());

        var flagged = Read(file, null, "--node-label", "a=1", "--node-label", "b=2", "--register-with-taint", "x:NoExecute", "--insecure-registry", "r1.lan", "--insecure-registry", "r2.lan");
        Assert.AreEqual(2, flagged.NodeLabels.Count, "the flag's map replaces the file's");
        Assert.AreEqual("x", flagged.NodeTaints.Single().Key);
        Assert.IsNull(flagged.NodeTaints.Single().Value);
        Assert.AreEqual(2, flagged.Registries.InsecureRegistries.Count);
    }

    [TestMethod]
    public void Every_problem_in_every_source_is_listed_in_one_message()
    {
        var file = WriteFile("""{ "Node": { "MaxPods": 0, "Nmae": "typo" }, "Server": { "TlsCertFile": "/nonexistent/kubelet.crt" }, "Pipeline": { "Stages": { "Compile": { "Capacity": "many" } } } }""");
        var ex = Assert.ThrowsExactly<InvalidSettingsException>(() => Read(
            file,
            new Dictionary<string, string> { ["KRUSTLET_BACKOF__INITIAL"] = "1s", ["KRUSTLET_API__QPS"] = "-3" },
            "--port", "70000", "--node-ip", "not-an-ip", "--container-log-max-size", "huge", "--backoff-initial", "10m", "--backoff-max", "1m", "--node-label", "bad label=x", "--register-with-taint", "k=v:Sometimes", "--set", "Nope=1"));

        string[] expected =
        [
            "Node:MaxPods (from " + file + ") must be a whole number from 1 to 100000 (got '0')",
            file + ": Node:Nmae is not a setting",
            "Server:TlsCertFile (from " + file + ") names a file that does not exist: /nonexistent/kubelet.crt",
            "Pipeline:Stages:Compile:Capacity (from " + file + ") must be a whole number from 1 to 1000000 (got 'many')",
            "environment variable KRUSTLET_BACKOF__INITIAL is not a setting",
            "Api:Qps (from KRUSTLET_API__QPS) must be a number greater than zero (got '-3')",
            "Server:Port (from --port) must be a whole number from 0 to 65535 (got '70000')",
            "Node:Ip (from --node-ip) must be an IP address (got 'not-an-ip')",
            "Logs:MaxSize (from --container-log-max-size) must be a positive size",
            "Backoff:Initial (00:10:00) must not exceed Backoff:Max (00:01:00)",
            "'bad label=x' is not a valid label",
            "'k=v:Sometimes' must be key[=value]:Effect",
            "--set Nope: not a setting",
        ];
        foreach (var problem in expected)
        {
            StringAssert.Contains(ex.Message, problem);
        }

        Assert.HasCount(expected.Length, ex.Problems, ex.Message);
    }

    [TestMethod]
    public void More_pods_than_the_kernels_memory_mappings_hold_are_refused_at_start()
    {
        AgentSettings ReadWithLimit(long limit, params RawSetting[] given) =>
            AgentSettingsReader.Read(new SettingsInput(null, NoEnvironment, given, MemoryMappingLimit: limit));
        var pods = SettingsSources.FromText(SettingsCatalog.MaxPods, "--max-pods", "12000", []);
        var compact = SettingsSources.FromText(SettingsCatalog.CompactMemories, "--set Wasm:CompactMemories", "true", []);

        var ex = Assert.ThrowsExactly<InvalidSettingsException>(() => ReadWithLimit(65530, pods));
        StringAssert.Contains(ex.Message, "The executor pool needs up to 72000 memory mappings for 12000 slots (Wasm:PoolSlots, by default Node:MaxPods), over the kernel's vm.max_map_count (65530) less 4096 for the rest of the agent: at most 10239 fit; Wasm:CompactMemories=true fits more, or raise vm.max_map_count (sysctl).");
        Assert.AreEqual(12000, ReadWithLimit(65530, pods, compact).MaxPods, "compact memories need fewer mappings per slot");
        Assert.AreEqual(12000, ReadWithLimit(65530, pods, compact).Wasm.PoolSlots, "the pool is sized from Node:MaxPods");
        Assert.IsTrue(ReadWithLimit(65530, compact).Wasm.CompactMemories);
        Assert.AreEqual(110, ReadWithLimit(65530).MaxPods, "the default fits any kernel");
    }

    [TestMethod]
    public void The_Tmpfs_size_limit_mode_needs_root_and_other_modes_are_refused()
    {
        AgentSettings ReadMode(string mode, bool canMount) =>
            AgentSettingsReader.Read(new SettingsInput(null, NoEnvironment, [SettingsSources.FromText(SettingsCatalog.EmptyDirSizeLimit, "--set Volumes:EmptyDirSizeLimit", mode, [])], CanMount: canMount));

        Assert.AreEqual(Stages.VolumeSetup.EmptyDirSizeLimitMode.Tmpfs, ReadMode("Tmpfs", canMount: true).EmptyDirSizeLimit);
        Assert.AreEqual(Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict, ReadMode("Evict", canMount: false).EmptyDirSizeLimit);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidSettingsException>(() => ReadMode("Tmpfs", canMount: false)).Message, "Volumes:EmptyDirSizeLimit (from --set Volumes:EmptyDirSizeLimit) is Tmpfs, which mounts a tmpfs on each size-limited emptyDir and needs the agent to run as root; use Evict or run as root.");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidSettingsException>(() => ReadMode("quota", canMount: true)).Message, "Volumes:EmptyDirSizeLimit (from --set Volumes:EmptyDirSizeLimit) must be Evict or Tmpfs (got 'quota').");
        Assert.AreEqual(TimeSpan.FromSeconds(30), Read(null, null, "--sync-frequency", "30s").SyncFrequency);
    }

    [TestMethod]
    public void A_settings_file_that_is_not_json_or_not_there_is_named()
    {
        var broken = WriteFile("{ \"Node\": ");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidSettingsException>(() => Read(broken)).Message, $"the settings file {broken} is not valid JSON");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidSettingsException>(() => Read("/nonexistent/settings.json")).Message, "--config /nonexistent/settings.json: no such file");
        var wrongShape = WriteFile("""{ "Node": { "Labels": "a=b", "MaxPods": [1] } }""");
        var ex = Assert.ThrowsExactly<InvalidSettingsException>(() => Read(wrongShape));
        StringAssert.Contains(ex.Message, "Node:Labels (from " + wrongShape + ") must be a JSON object");
        StringAssert.Contains(ex.Message, "Node:MaxPods (from " + wrongShape + ") must be a single value, not a JSON array");
    }

    [TestMethod]
    public void Durations_read_as_go_durations_or_time_spans()
    {
        Assert.IsTrue(AgentSettingsReader.TryParseDuration("1h2m3s", out var d));
        Assert.AreEqual(new TimeSpan(1, 2, 3), d);
        Assert.IsTrue(AgentSettingsReader.TryParseDuration("250ms", out d));
        Assert.AreEqual(TimeSpan.FromMilliseconds(250), d);
        Assert.IsTrue(AgentSettingsReader.TryParseDuration("00:00:30", out d));
        Assert.AreEqual(TimeSpan.FromSeconds(30), d);
        Assert.IsFalse(AgentSettingsReader.TryParseDuration("10 seconds", out _));
        Assert.IsFalse(AgentSettingsReader.TryParseDuration("5x", out _));
    }

    [TestMethod]
    public void The_default_each_setting_shows_reads_back_as_its_declared_default()
    {
        foreach (var setting in SettingsCatalog.All.OfType<Setting<TimeSpan>>())
        {
            Assert.IsTrue(AgentSettingsReader.TryParseDuration(setting.DefaultText, out var shown), setting.Key);
            Assert.AreEqual(setting.Default, shown, setting.Key);
        }

        foreach (var setting in SettingsCatalog.All.OfType<Setting<long>>().Where(s => s.Kind == SettingKind.Size))
        {
            Assert.AreEqual(setting.Default, new k8s.Models.ResourceQuantity(setting.DefaultText).ToInt64(), setting.Key);
        }

        foreach (var setting in SettingsCatalog.All.OfType<Setting<int>>().Where(s => s.Shown is null))
        {
            Assert.AreEqual(setting.Default.ToString(System.Globalization.CultureInfo.InvariantCulture), setting.DefaultText, setting.Key);
        }

        Assert.AreEqual("1m30s", SettingText.Duration(TimeSpan.FromSeconds(90)));
        Assert.AreEqual("5m", SettingText.Duration(TimeSpan.FromSeconds(300)));
        Assert.AreEqual("10Mi", SettingText.Size(10L * 1024 * 1024));
        Assert.AreEqual("1000000", SettingText.Size(1_000_000));
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task The_node_verb_refuses_invalid_settings_with_every_problem_and_a_non_zero_exit()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await Program.BuildCommand(output, error).Parse(["node", "--max-pods", "0", "--kube-api-burst", "x"]).InvokeAsync(cancellationToken: TestContext.CancellationToken);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error.ToString(), "invalid settings (2 problems)");
        StringAssert.Contains(error.ToString(), "Node:MaxPods (from --max-pods)");
        StringAssert.Contains(error.ToString(), "Api:Burst (from --kube-api-burst)");
    }

    public TestContext TestContext { get; set; } = null!;
}
