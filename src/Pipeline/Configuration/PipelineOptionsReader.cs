using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Krustlet.Pipeline.Configuration;

/// <summary>A configuration that cannot be used; every problem is listed, each naming its setting.</summary>
public sealed class PipelineConfigurationException : Exception
{
    public PipelineConfigurationException(IReadOnlyList<string> problems)
        : base(Describe(problems))
    {
        Problems = problems;
    }

    public PipelineConfigurationException()
        : this(["The pipeline configuration is invalid."])
    {
    }

    public PipelineConfigurationException(string message)
        : this([message])
    {
    }

    public PipelineConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [message];
    }

    public IReadOnlyList<string> Problems { get; }

    private static string Describe(IReadOnlyList<string> problems) =>
        problems.Count == 1
            ? $"Invalid configuration: {problems[0]}"
            : $"Invalid configuration ({problems.Count} problems):{Environment.NewLine}  - {string.Join(Environment.NewLine + "  - ", problems)}";
}

/// <summary>
/// Reads <c>Pipeline:*</c> from configuration over the given defaults, collecting every problem
/// (zero, negative or non-numeric values, unknown stages, unknown settings) before failing once.
/// </summary>
public static class PipelineOptionsReader
{
    /// <summary>Reads and validates; throws <see cref="PipelineConfigurationException"/> listing every problem.</summary>
    /// <param name="configuration">The root configuration (the reader looks under <c>Pipeline</c>).</param>
    /// <param name="defaults">Every stage the pipeline has, with its default options.</param>
    public static PipelineOptions Read(IConfiguration configuration, IReadOnlyDictionary<string, StageOptions> defaults)
    {
        var (options, problems) = TryRead(configuration, defaults);
        return problems.Count == 0 ? options! : throw new PipelineConfigurationException(problems);
    }

    /// <summary>Reads and validates, returning the options (null when invalid) and the problems found.</summary>
    public static (PipelineOptions? Options, IReadOnlyList<string> Problems) TryRead(IConfiguration configuration, IReadOnlyDictionary<string, StageOptions> defaults)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(defaults);

        var problems = new List<string>();
        var section = configuration.GetSection(PipelineOptions.SectionName);
        var stagesSection = section.GetSection("Stages");
        var known = string.Join(", ", defaults.Keys);

        foreach (var child in stagesSection.GetChildren())
        {
            if (!defaults.Keys.Any(k => string.Equals(k, child.Key, StringComparison.OrdinalIgnoreCase)))
            {
                problems.Add($"{child.Path} is not a stage; the stages are {known}.");
                continue;
            }

            foreach (var setting in child.GetChildren())
            {
                if (!string.Equals(setting.Key, StageOptions.ParallelismKey, StringComparison.OrdinalIgnoreCase)
                    && !string.Equals(setting.Key, StageOptions.CapacityKey, StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{setting.Path} is not a stage setting; use {StageOptions.ParallelismKey} or {StageOptions.CapacityKey}.");
                }
            }
        }

        var stages = new Dictionary<string, StageOptions>(StringComparer.Ordinal);
        foreach (var (name, fallback) in defaults)
        {
            var stage = FindChild(stagesSection, name);
            var parallelism = ReadPositive(stage, StageOptions.ParallelismKey, fallback.Parallelism, problems, $"{stagesSection.Path}:{name}");
            var capacity = ReadPositive(stage, StageOptions.CapacityKey, fallback.Capacity, problems, $"{stagesSection.Path}:{name}");
            stages[name] = new StageOptions(parallelism, capacity);
        }

        var shutdownTimeout = ReadDuration(section, "ShutdownTimeout", PipelineOptions.DefaultShutdownTimeout, problems);
        var cancellationGrace = ReadDuration(section, "CancellationGrace", PipelineOptions.DefaultCancellationGrace, problems);

        return problems.Count == 0
            ? (new PipelineOptions(stages) { ShutdownTimeout = shutdownTimeout, CancellationGrace = cancellationGrace }, problems)
            : (null, problems);
    }

    private static IConfigurationSection? FindChild(IConfigurationSection parent, string name) =>
        parent.GetChildren().FirstOrDefault(c => string.Equals(c.Key, name, StringComparison.OrdinalIgnoreCase));

    private static int ReadPositive(IConfigurationSection? stage, string key, int fallback, List<string> problems, string stagePath)
    {
        var raw = stage?.GetChildren().FirstOrDefault(c => string.Equals(c.Key, key, StringComparison.OrdinalIgnoreCase))?.Value;
        if (raw is null)
        {
            return fallback;
        }

        if (int.TryParse(raw.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            return value;
        }

        problems.Add($"{stagePath}:{key} must be a whole number greater than zero (got '{raw}').");
        return fallback;
    }

    private static TimeSpan ReadDuration(IConfigurationSection section, string key, TimeSpan fallback, List<string> problems)
    {
        var raw = section[key];
        if (raw is null)
        {
            return fallback;
        }

        if (TimeSpan.TryParse(raw.Trim(), CultureInfo.InvariantCulture, out var value) && value > TimeSpan.Zero)
        {
            return value;
        }

        problems.Add($"{section.Path}:{key} must be a positive duration such as 00:00:30 (got '{raw}').");
        return fallback;
    }
}
