using System.CommandLine;

namespace Krustlet.Host.Configuration;

/// <summary>
/// The command-line side of the settings: <c>--config</c>, one flag per setting that has one, and
/// <c>--set Key=Value</c> for any setting. Added to each verb that runs the agent.
/// </summary>
public sealed class SettingsFlags
{
    private readonly List<(Setting Setting, Option<string[]> Option)> _flags;

    public SettingsFlags()
    {
        Config = new Option<string?>("--config") { Description = "A JSON settings file (see the README's configuration reference)." };
        Set = new Option<string[]>("--set") { Description = "Any setting as Key=Value, e.g. Pipeline:Stages:Run:Parallelism=16 (repeatable)." };
        _flags = [.. SettingsCatalog.All.Where(s => s.Flag is not null).Select(s => (s, new Option<string[]>(s.Flag!)
        {
            Description = $"{s.Description} [{s.Key}; default: {s.DefaultText}]",
            Arity = ArgumentArity.OneOrMore, // repeatable: lists and maps gather every value, other settings take the last
        }))];
    }

    /// <summary>The exit code of a verb given invalid settings.</summary>
    public const int InvalidSettingsExitCode = 2;

    public Option<string?> Config { get; }

    public Option<string[]> Set { get; }

    /// <summary>Adds the flags to a command.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Config);
        command.Options.Add(Set);
        foreach (var (_, option) in _flags)
        {
            command.Options.Add(option);
        }
    }

    /// <summary>
    /// Reads the settings from the flags, the process environment and the settings file; when they are
    /// invalid, writes every problem to <paramref name="error"/> and returns null (the verb then exits
    /// with <see cref="InvalidSettingsExitCode"/>).
    /// </summary>
    public async Task<AgentSettings?> ReadOrReportAsync(ParseResult parse, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return Read(parse, SettingsInput.ProcessEnvironment());
        }
        catch (InvalidSettingsException ex)
        {
            await error.WriteLineAsync($"error: {ex.Message}");
            return null;
        }
    }

    /// <summary>Reads and validates the settings: these flags over the environment over the settings file.</summary>
    public AgentSettings Read(ParseResult parse, IReadOnlyDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var problems = new List<string>();
        var flags = new List<RawSetting>();
        foreach (var (setting, option) in _flags)
        {
            if (parse.GetResult(option) is not null && parse.GetValue(option) is { Length: > 0 } values)
            {
                flags.Add(SettingsSources.FromFlag(setting, setting.Flag!, values, problems));
            }
        }

        foreach (var assignment in parse.GetValue(Set) ?? [])
        {
            if (SettingsSources.FromAssignment(assignment, problems) is { } raw)
            {
                flags.Add(raw);
            }
        }

        var config = parse.GetValue(Config);
        if (config is not null && !File.Exists(config))
        {
            problems.Add($"--config {config}: no such file.");
            config = null;
        }

        AgentSettings? settings = null;
        try
        {
            settings = AgentSettingsReader.Read(new SettingsInput(config, environment, flags));
        }
        catch (InvalidSettingsException ex)
        {
            problems.AddRange(ex.Problems);
        }

        return problems.Count == 0 ? settings! : throw new InvalidSettingsException(problems);
    }
}
