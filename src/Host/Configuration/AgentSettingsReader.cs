using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using k8s.Models;
using Krustlet.Host.KubeletApi.Auth;
using Krustlet.Pipeline.Configuration;
using Krustlet.Stages;
using Krustlet.Stages.Compile;
using Krustlet.Stages.ImagePull.Registry;
using Krustlet.Stages.Run;

namespace Krustlet.Host.Configuration;

/// <summary>What the agent's settings are read from.</summary>
/// <param name="ConfigFile">The JSON settings file (<c>--config</c>), if any.</param>
/// <param name="Environment">The process environment (only <c>KRUSTLET_*</c> is read).</param>
/// <param name="Flags">Values given on the command line.</param>
/// <param name="MemoryMappingLimit">The kernel's limit on a process's memory mappings (null: read <c>/proc/sys/vm/max_map_count</c>).</param>
/// <param name="CanMount">Whether the agent may mount filesystems (null: whether it runs as root).</param>
public sealed record SettingsInput(string? ConfigFile, IReadOnlyDictionary<string, string> Environment, IReadOnlyList<RawSetting> Flags, long? MemoryMappingLimit = null, bool? CanMount = null)
{
    /// <summary>The current process's environment variables.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment() =>
        System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? string.Empty, StringComparer.Ordinal);
}

/// <summary>
/// Reads the agent's settings with this precedence, highest first: command-line flags, <c>KRUSTLET_</c>
/// environment variables, the JSON settings file, the defaults. Every problem in every source is
/// collected and reported at once.
/// </summary>
public static partial class AgentSettingsReader
{
    private static readonly string[] TaintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    /// <summary>Reads and validates; throws <see cref="InvalidSettingsException"/> listing every problem.</summary>
    public static AgentSettings Read(SettingsInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var problems = new List<string>();
        var merged = new Dictionary<string, RawSetting>(StringComparer.Ordinal);
        IEnumerable<RawSetting> layers = [
            .. input.ConfigFile is null ? [] : SettingsSources.FromFile(input.ConfigFile, problems),
            .. SettingsSources.FromEnvironment(input.Environment, problems),
            .. input.Flags,
        ];
        foreach (var raw in layers)
        {
            merged[raw.Setting.Key] = raw;
        }

        var values = new Values(merged, problems);
        var stages = StageNames.Defaults.Keys.ToDictionary(
            stage => stage,
            stage => new StageOptions(
                values.Integer(SettingsCatalog.ForStage(stage, StageOptions.ParallelismKey)),
                values.Integer(SettingsCatalog.ForStage(stage, StageOptions.CapacityKey))),
            StringComparer.Ordinal);

        var backoff = new RestartBackoffOptions
        {
            Initial = values.Duration(SettingsCatalog.BackoffInitial),
            Max = values.Duration(SettingsCatalog.BackoffMax),
            ResetAfter = values.Duration(SettingsCatalog.BackoffResetAfter),
        };
        if (backoff.Initial > backoff.Max)
        {
            problems.Add($"{SettingsCatalog.BackoffInitial.Key} ({backoff.Initial}) must not exceed {SettingsCatalog.BackoffMax.Key} ({backoff.Max}).");
        }

        var cert = values.File(SettingsCatalog.TlsCertFile);
        var key = values.File(SettingsCatalog.TlsPrivateKeyFile);
        if ((cert is null) != (key is null))
        {
            problems.Add($"{SettingsCatalog.TlsCertFile.Key} and {SettingsCatalog.TlsPrivateKeyFile.Key} must be given together.");
        }

        var maxPods = values.Integer(SettingsCatalog.MaxPods);
        var poolSlots = values.Integer(SettingsCatalog.PoolSlots);
        var dataDir = values.Path(SettingsCatalog.DataDir) ?? DefaultDataDirectory;
        var bootstrap = values.FilePath(SettingsCatalog.BootstrapKubeconfig);
        var settings = new AgentSettings
        {
            DataDir = dataDir,
            Kubeconfig = bootstrap is null ? values.File(SettingsCatalog.Kubeconfig) : values.FilePath(SettingsCatalog.Kubeconfig) ?? Path.Combine(dataDir, "kubeconfig"),
            BootstrapKubeconfig = bootstrap,
            NodeName = NodeName(values),
            NodeIp = values.Ip(SettingsCatalog.NodeIp)?.ToString() ?? DefaultNodeIp(),
            MaxPods = maxPods,
            MaxContainersPerPod = values.Integer(SettingsCatalog.MaxContainersPerPod),
            NodeLabels = Labels(values),
            NodeTaints = Taints(values),
            ServerAddress = values.Ip(SettingsCatalog.ServerAddress) ?? SettingsCatalog.ServerAddress.Default,
            ServerPort = values.Integer(SettingsCatalog.ServerPort),
            TlsCertFile = cert,
            TlsPrivateKeyFile = key,
            ClientCaFile = values.File(SettingsCatalog.ClientCaFile),
            TokenFile = values.File(SettingsCatalog.TokenFile),
            AnonymousAuth = values.Boolean(SettingsCatalog.AnonymousAuth),
            AuthenticationTokenWebhook = values.Boolean(SettingsCatalog.AuthenticationTokenWebhook),
            AuthenticationTokenWebhookCacheTtl = values.Duration(SettingsCatalog.AuthenticationTokenWebhookCacheTtl),
            AuthorizationMode = AuthorizationMode(values),
            AuthorizationWebhookCacheAuthorizedTtl = values.Duration(SettingsCatalog.AuthorizationWebhookCacheAuthorizedTtl),
            AuthorizationWebhookCacheUnauthorizedTtl = values.Duration(SettingsCatalog.AuthorizationWebhookCacheUnauthorizedTtl),
            PagePort = values.Integer(SettingsCatalog.PagePort),
            PageOnKubeletPort = values.Boolean(SettingsCatalog.PageOnKubeletPort),
            Registries = Registries(values, problems),
            AllowedHostPathPrefixes = HostPaths(values),
            SyncFrequency = values.Duration(SettingsCatalog.SyncFrequency),
            EmptyDirSizeLimit = EmptyDirSizeLimit(values, input.CanMount ?? Stages.VolumeSetup.EmptyDirLimits.CanMount),
            ImageGcThresholds = ImageGcThresholds(values),
            Pressure = new Stages.Pressure.NodePressureOptions { Thresholds = EvictionThresholds(values), TransitionPeriod = values.Duration(SettingsCatalog.EvictionPressureTransitionPeriod) },
            LogRotation = new LogRotationOptions(values.Size(SettingsCatalog.LogMaxSize), values.Integer(SettingsCatalog.LogMaxFiles)),
            Backoff = backoff,
            ApiQps = values.Number(SettingsCatalog.ApiQps),
            ApiBurst = values.Integer(SettingsCatalog.ApiBurst),
            Pipeline = new PipelineOptions(stages)
            {
                ShutdownTimeout = values.Duration(SettingsCatalog.ShutdownTimeout),
                CancellationGrace = values.Duration(SettingsCatalog.CancellationGrace),
            },
            Wasm = new WasmEngineOptions
            {
                FuelEnabled = values.Boolean(SettingsCatalog.FuelEnabled),
                FuelPerContainer = (ulong)values.Long(SettingsCatalog.FuelPerContainer),
                EpochTick = values.Duration(SettingsCatalog.EpochTick),
                CompactMemories = values.Boolean(SettingsCatalog.CompactMemories),
                MaxContainerMemory = values.Size(SettingsCatalog.MaxContainerMemory),
                ExecutorThreads = values.Integer(SettingsCatalog.ExecutorThreads),
                PoolSlots = poolSlots > 0 ? poolSlots : maxPods,
            },
            AllowNetwork = values.Boolean(SettingsCatalog.AllowNetwork),
            Http = new Stages.Run.Http.HttpHandlerOptions
            {
                RequestTimeout = values.Duration(SettingsCatalog.HttpRequestTimeout),
                MaxRequestBodyBytes = values.Size(SettingsCatalog.HttpMaxRequestBody),
                MaxConcurrentRequests = values.Integer(SettingsCatalog.HttpMaxConcurrentRequests),
                RequestQueue = values.Integer(SettingsCatalog.HttpRequestQueue),
            },
            FileCheckFrequency = values.Duration(SettingsCatalog.FileCheckFrequency),
        };

        problems.AddRange(settings.Http.Problems());
        CheckExecutorPool(settings, input.MemoryMappingLimit, problems);
        return problems.Count == 0 ? settings : throw new InvalidSettingsException(problems);
    }

    /// <summary>
    /// A node that runs out of memory mappings or address space dies (Wasmtime and the .NET runtime
    /// abort), so an executor pool (<c>Wasm:PoolSlots</c>, by default <c>Node:MaxPods</c>) the kernel's
    /// <c>vm.max_map_count</c> or the address space cannot hold is refused at start, with the rest.
    /// </summary>
    private static void CheckExecutorPool(AgentSettings settings, long? limit, List<string> problems) =>
        problems.AddRange(Krustlet.Stages.Run.Executor.ExecutorEngine.ExecutorLayout.For(settings.Wasm, limit).Problems);

    /// <summary>The data directory when none is set: <c>$XDG_DATA_HOME/krustlet</c>, i.e. <c>~/.local/share/krustlet</c>.</summary>
    public static string DefaultDataDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "krustlet");

    /// <summary>This host's first non-loopback IPv4 address on an interface that is up, else 127.0.0.1.</summary>
    public static string DefaultNodeIp()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                .Select(a => a.Address)
                .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))?.ToString() ?? "127.0.0.1";
        }
        catch (NetworkInformationException)
        {
            return "127.0.0.1";
        }
    }

    private static string NodeName(Values values)
    {
        var name = values.Text(SettingsCatalog.NodeName) ?? Environment.MachineName.ToLowerInvariant();
        if (!DnsSubdomain().IsMatch(name))
        {
            values.Problem(SettingsCatalog.NodeName, $"must be a lower-case DNS subdomain (letters, digits, '-' and '.'), at most 253 characters (got '{name}')");
        }

        return name;
    }

    private static KubeletAuthorizationMode? AuthorizationMode(Values values)
    {
        if (values.Text(SettingsCatalog.AuthorizationMode) is not { } text)
        {
            return null;
        }

        if (text is nameof(KubeletAuthorizationMode.Webhook) or nameof(KubeletAuthorizationMode.AlwaysAllow))
        {
            return Enum.Parse<KubeletAuthorizationMode>(text);
        }

        values.Problem(SettingsCatalog.AuthorizationMode, $"must be Webhook or AlwaysAllow (got '{text}')");
        return null;
    }

    private static Dictionary<string, string> Labels(Values values)
    {
        var labels = values.Map(SettingsCatalog.NodeLabels) ?? new Dictionary<string, string>();
        foreach (var (key, value) in labels)
        {
            if (!LabelKey().IsMatch(key) || !LabelValue().IsMatch(value))
            {
                values.Problem(SettingsCatalog.NodeLabels, $"'{key}={value}' is not a valid label (key: optional DNS prefix and '/', then up to 63 of [A-Za-z0-9-_.]; value: up to 63 of the same)");
            }
        }

        return new Dictionary<string, string>(labels, StringComparer.Ordinal);
    }

    private static List<V1Taint> Taints(Values values)
    {
        var raw = values.List(SettingsCatalog.NodeTaints) ?? [];
        var taints = new List<V1Taint>();
        foreach (var item in raw)
        {
            var match = Taint().Match(item);
            if (!match.Success || !TaintEffects.Contains(match.Groups["effect"].Value, StringComparer.Ordinal))
            {
                values.Problem(SettingsCatalog.NodeTaints, $"'{item}' must be key[=value]:Effect with Effect one of {string.Join(", ", TaintEffects)}");
                continue;
            }

            taints.Add(new V1Taint
            {
                Key = match.Groups["key"].Value,
                Value = match.Groups["value"].Success ? match.Groups["value"].Value : null,
                Effect = match.Groups["effect"].Value,
            });
        }

        return taints;
    }

    private static RegistryOptions Registries(Values values, List<string> problems)
    {
        var insecure = values.List(SettingsCatalog.InsecureRegistries) ?? [];
        var mirrors = values.Map(SettingsCatalog.RegistryMirrors) ?? new Dictionary<string, string>();
        var configuration = Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(new Microsoft.Extensions.Configuration.ConfigurationBuilder(), 
        [
            .. insecure.Select((host, i) => KeyValuePair.Create<string, string?>($"{RegistryOptions.SectionName}:Insecure:{i}", host)),
            .. mirrors.SelectMany(m => m.Value.Split(';', StringSplitOptions.TrimEntries).Select((host, i) => KeyValuePair.Create<string, string?>($"{RegistryOptions.SectionName}:Mirrors:{m.Key}:{i}", host))),
        ]).Build();
        var (options, registryProblems) = RegistryOptions.Read(configuration);
        problems.AddRange(registryProblems);
        return (options ?? new RegistryOptions()) with
        {
            ConnectTimeout = values.Duration(SettingsCatalog.RegistryConnectTimeout),
            ResponseTimeout = values.Duration(SettingsCatalog.RegistryResponseTimeout),
            IdleTimeout = values.Duration(SettingsCatalog.RegistryIdleTimeout),
            CredentialsVerification = CredentialsVerification(values),
            MaxConcurrentPullsPerRegistry = values.Integer(SettingsCatalog.MaxConcurrentPullsPerRegistry),
        };
    }

    private static Stages.VolumeSetup.EmptyDirSizeLimitMode EmptyDirSizeLimit(Values values, bool canMount)
    {
        switch (values.Text(SettingsCatalog.EmptyDirSizeLimit))
        {
            case null or nameof(Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict):
                return Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict;
            case nameof(Stages.VolumeSetup.EmptyDirSizeLimitMode.Tmpfs) when canMount:
                return Stages.VolumeSetup.EmptyDirSizeLimitMode.Tmpfs;
            case nameof(Stages.VolumeSetup.EmptyDirSizeLimitMode.Tmpfs):
                values.Problem(SettingsCatalog.EmptyDirSizeLimit, "is Tmpfs, which mounts a tmpfs on each size-limited emptyDir and needs the agent to run as root; use Evict or run as root");
                return Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict;
            case var text:
                values.Problem(SettingsCatalog.EmptyDirSizeLimit, $"must be Evict or Tmpfs (got '{text}')");
                return Stages.VolumeSetup.EmptyDirSizeLimitMode.Evict;
        }
    }

    private static (int High, int Low) ImageGcThresholds(Values values)
    {
        var high = values.Integer(SettingsCatalog.ImageGcHighThreshold);
        var low = values.Integer(SettingsCatalog.ImageGcLowThreshold);
        if (low >= high && high < 100)
        {
            values.Problem(SettingsCatalog.ImageGcLowThreshold, $"must be below ImageGc:HighThresholdPercent ({high}) (got '{low}')");
        }

        return (high, low);
    }

    private static Stages.ImagePull.Registry.PullCredentialsVerification CredentialsVerification(Values values)
    {
        var text = values.Text(SettingsCatalog.PullCredentialsVerification);
        if (text is null)
        {
            return Stages.ImagePull.Registry.PullCredentialsVerification.NeverVerifyPreloadedImages;
        }

        if (Enum.TryParse<Stages.ImagePull.Registry.PullCredentialsVerification>(text, ignoreCase: false, out var policy) && Enum.IsDefined(policy) && !int.TryParse(text, out _))
        {
            return policy;
        }

        values.Problem(SettingsCatalog.PullCredentialsVerification, $"must be NeverVerifyPreloadedImages, AlwaysVerify or NeverVerify (got '{text}')");
        return Stages.ImagePull.Registry.PullCredentialsVerification.NeverVerifyPreloadedImages;
    }

    private static IReadOnlyList<Stages.Pressure.EvictionThreshold> EvictionThresholds(Values values)
    {
        try
        {
            var text = values.Text(SettingsCatalog.EvictionHard) ?? Stages.Pressure.EvictionThresholds.Defaults;
            return text == "none" ? [] : Stages.Pressure.EvictionThresholds.Parse(text);
        }
        catch (FormatException ex)
        {
            values.Problem(SettingsCatalog.EvictionHard, ex.Message);
            return [];
        }
    }

    private static List<string> HostPaths(Values values)
    {
        var prefixes = values.List(SettingsCatalog.AllowedHostPaths) ?? [];
        foreach (var prefix in prefixes.Where(p => !Path.IsPathFullyQualified(p)))
        {
            values.Problem(SettingsCatalog.AllowedHostPaths, $"'{prefix}' must be an absolute path");
        }

        return [.. prefixes.Select(Path.GetFullPath)];
    }

    /// <summary>Parses a duration: Go-style (<c>1m30s</c>, <c>500ms</c>, <c>2h</c>) or <c>hh:mm:ss</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        duration = TimeSpan.Zero;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration);
        }

        var parts = GoDuration().Matches(text);
        if (parts.Count == 0 || parts.Sum(p => p.Length) != text.Length)
        {
            return false;
        }

        foreach (Match part in parts)
        {
            var amount = double.Parse(part.Groups["amount"].Value, CultureInfo.InvariantCulture);
            duration += part.Groups["unit"].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "m" => TimeSpan.FromMinutes(amount),
                _ => TimeSpan.FromHours(amount),
            };
        }

        return true;
    }

    [GeneratedRegex(@"(?<amount>\d+(\.\d+)?)(?<unit>ms|s|m|h)")]
    private static partial Regex GoDuration();

    [GeneratedRegex(@"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
    private static partial Regex LabelKey();

    [GeneratedRegex(@"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
    private static partial Regex LabelValue();

    [GeneratedRegex(@"^(?<key>[^=:\s]+)(=(?<value>[^:\s]*))?:(?<effect>\w+)$")]
    private static partial Regex Taint();

    /// <summary>The merged raw values, parsed on demand; every problem names the setting and its source.</summary>
    /// <remarks>Each read falls back to the setting's declared default, after reporting a bad value.</remarks>
    private sealed class Values(Dictionary<string, RawSetting> merged, List<string> problems)
    {
        public void Problem(Setting setting, string message) =>
            problems.Add(merged.TryGetValue(setting.Key, out var raw) ? $"{setting.Key} (from {raw.Source}) {message}." : $"{setting.Key} {message}.");

        public string? Text(Setting setting)
        {
            if (!merged.TryGetValue(setting.Key, out var raw))
            {
                return null;
            }

            if (string.IsNullOrWhiteSpace(raw.Text))
            {
                Problem(setting, "must not be empty");
                return null;
            }

            return raw.Text.Trim();
        }

        public int Integer(Setting<int> setting) => (int)WholeNumber(setting, setting.Default);

        public long Long(Setting<long> setting) => WholeNumber(setting, setting.Default);

        private long WholeNumber(Setting setting, long fallback)
        {
            if (Text(setting) is not { } text)
            {
                return fallback;
            }

            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= setting.Minimum && value <= setting.Maximum)
            {
                return value;
            }

            Problem(setting, $"must be a whole number from {setting.Minimum} to {setting.Maximum} (got '{text}')");
            return fallback;
        }

        public double Number(Setting<double> setting)
        {
            var fallback = setting.Default;
            if (Text(setting) is not { } text)
            {
                return fallback;
            }

            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && double.IsFinite(value))
            {
                return value;
            }

            Problem(setting, $"must be a number greater than zero (got '{text}')");
            return fallback;
        }

        public bool Boolean(Setting<bool> setting)
        {
            if (Text(setting) is not { } text)
            {
                return setting.Default;
            }

            if (bool.TryParse(text, out var value))
            {
                return value;
            }

            Problem(setting, $"must be true or false (got '{text}')");
            return setting.Default;
        }

        public TimeSpan Duration(Setting<TimeSpan> setting)
        {
            if (Text(setting) is not { } text)
            {
                return setting.Default;
            }

            if (TryParseDuration(text, out var value) && value > TimeSpan.Zero)
            {
                return value;
            }

            Problem(setting, $"must be a positive duration such as 10s, 1m30s, 500ms or 00:00:10 (got '{text}')");
            return setting.Default;
        }

        public long Size(Setting<long> setting)
        {
            var fallback = setting.Default;
            if (Text(setting) is not { } text)
            {
                return fallback;
            }

            try
            {
                var bytes = new ResourceQuantity(text).ToInt64();
                if (bytes > 0)
                {
                    return bytes;
                }
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException)
            {
                // reported below
            }

            Problem(setting, $"must be a positive size such as 10Mi, 512Ki or 1000000 (got '{text}')");
            return fallback;
        }

        /// <summary>The address given, or null when none is (or it is invalid): the caller applies the default.</summary>
        public IPAddress? Ip(Setting setting)
        {
            if (Text(setting) is not { } text)
            {
                return null;
            }

            if (IPAddress.TryParse(text, out var address))
            {
                return address;
            }

            Problem(setting, $"must be an IP address (got '{text}')");
            return null;
        }

        public string? File(Setting<string?> setting)
        {
            if (Text(setting) is not { } text)
            {
                return null;
            }

            var path = System.IO.Path.GetFullPath(text);
            if (System.IO.File.Exists(path))
            {
                return path;
            }

            Problem(setting, $"names a file that does not exist: {path}");
            return null;
        }

        /// <summary>A file's full path (<c>~/</c> expanded); the file need not exist, but the path must not name a directory.</summary>
        public string? FilePath(Setting<string?> setting) => FullPath(setting, directory: false);

        /// <summary>A directory's full path (<c>~/</c> expanded); it need not exist, but the path must not name a file.</summary>
        public string? Path(Setting<string?> setting) => FullPath(setting, directory: true);

        private string? FullPath(Setting<string?> setting, bool directory)
        {
            if (Text(setting) is not { } text)
            {
                return null;
            }

            var expanded = text.StartsWith("~/", StringComparison.Ordinal)
                ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..])
                : text;
            try
            {
                var path = System.IO.Path.GetFullPath(expanded);
                if (directory ? System.IO.File.Exists(path) : Directory.Exists(path))
                {
                    Problem(setting, directory ? $"must be a directory, but {path} is a file" : $"must be a file, but {path} is a directory");
                    return null;
                }

                return path;
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
            {
                Problem(setting, $"is not a usable path: {ex.Message}");
                return null;
            }
        }

        public IReadOnlyList<string>? List(Setting<IReadOnlyList<string>?> setting) => merged.TryGetValue(setting.Key, out var raw) ? raw.Items ?? [] : setting.Default;

        public IReadOnlyDictionary<string, string>? Map(Setting<IReadOnlyDictionary<string, string>?> setting) => merged.TryGetValue(setting.Key, out var raw) ? raw.Entries ?? new Dictionary<string, string>() : setting.Default;
    }
}
