namespace Krustlet.Host.Configuration;

/// <summary>How a setting's text is read.</summary>
public enum SettingKind
{
    /// <summary>Any non-empty text.</summary>
    Text,

    /// <summary>A whole number within the setting's bounds.</summary>
    WholeNumber,

    /// <summary>A positive decimal number.</summary>
    Number,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,

    /// <summary>A duration: <c>10s</c>, <c>1m30s</c>, <c>500ms</c>, <c>2h</c>, or <c>hh:mm:ss</c>.</summary>
    Duration,

    /// <summary>A size as a Kubernetes quantity: <c>10Mi</c>, <c>512Ki</c>, <c>1000000</c>.</summary>
    Size,

    /// <summary>An IP address.</summary>
    IpAddress,

    /// <summary>A path to a file that must exist.</summary>
    ExistingFile,

    /// <summary>A path (created when needed).</summary>
    Path,

    /// <summary>A path to a file that need not exist yet (the agent may write it).</summary>
    FilePath,

    /// <summary>A list: a JSON array in the settings file, comma-separated text elsewhere, a repeated flag.</summary>
    List,

    /// <summary>Key to value: a JSON object in the settings file, <c>k=v,k2=v2</c> elsewhere, a repeated <c>k=v</c> flag.</summary>
    Map,
}

/// <summary>
/// One setting: its key in the settings file (sections joined by <c>:</c>), how it is read, what it does
/// and its command-line flag. Its default lives in <see cref="Setting{T}"/>, typed; the environment
/// variable is derived from the key.
/// </summary>
/// <param name="Key">The key, e.g. <c>Node:MaxPods</c>.</param>
/// <param name="Kind">How its text is read.</param>
/// <param name="Description">What it does, one sentence.</param>
/// <param name="Flag">The command-line flag, e.g. <c>--max-pods</c>; every setting can also be given with <c>--set Key=Value</c>.</param>
public abstract record Setting(string Key, SettingKind Kind, string Description, string? Flag)
{
    /// <summary>The default as the reference (<c>krustlet settings</c>, the README) shows it.</summary>
    public abstract string DefaultText { get; }

    /// <summary>The smallest value of an <see cref="SettingKind.WholeNumber"/> setting.</summary>
    public long Minimum { get; init; } = 1;

    /// <summary>The largest value of an <see cref="SettingKind.WholeNumber"/> setting.</summary>
    public long Maximum { get; init; } = int.MaxValue;

    /// <summary>The environment variable: <c>KRUSTLET_</c>, then the key in upper snake case with <c>__</c> between sections.</summary>
    public string EnvironmentVariable => SettingsSources.EnvironmentPrefix + string.Join("__", Key.Split(':').Select(UpperSnake));

    private static string UpperSnake(string name)
    {
        var builder = new System.Text.StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
            {
                builder.Append('_');
            }

            builder.Append(char.ToUpperInvariant(name[i]));
        }

        return builder.ToString();
    }
}

/// <summary>
/// A setting and its typed default: the value the reader uses when no source sets it, and from which
/// the reference's text is rendered.
/// </summary>
/// <param name="Key">The key, e.g. <c>Node:MaxPods</c>.</param>
/// <param name="Kind">How its text is read.</param>
/// <param name="Default">
/// The value when the setting is not given; null for a setting that is unset by default (no file, no
/// list) or whose default is worked out when the agent starts (<see cref="Shown"/> says how).
/// </param>
/// <param name="Description">What it does, one sentence.</param>
/// <param name="Flag">The command-line flag, if it has its own.</param>
public sealed record Setting<T>(string Key, SettingKind Kind, T Default, string Description, string? Flag = null) : Setting(Key, Kind, Description, Flag)
{
    /// <summary>
    /// What the reference shows instead of the value, when the value alone does not say it: a default
    /// that depends on the machine (the host's name, the number of cores) or what an unset setting means.
    /// </summary>
    public string? Shown { get; init; }

    public override string DefaultText => Shown ?? SettingText.Format(Kind, Default);
}

/// <summary>Values written as the settings' sources take them (<c>10s</c>, <c>10Mi</c>, <c>false</c>).</summary>
public static class SettingText
{
    private static readonly (string Suffix, long Factor)[] BinarySuffixes = [("Ei", 1L << 60), ("Pi", 1L << 50), ("Ti", 1L << 40), ("Gi", 1L << 30), ("Mi", 1L << 20), ("Ki", 1L << 10)];

    /// <summary>A value of a setting of this kind as text; <c>none</c> for no value or an empty list or map.</summary>
    public static string Format(SettingKind kind, object? value) => value switch
    {
        null => "none",
        bool b => b ? "true" : "false",
        TimeSpan duration => Duration(duration),
        long bytes when kind == SettingKind.Size => Size(bytes),
        IReadOnlyDictionary<string, string> map => map.Count == 0 ? "none" : string.Join(", ", map.Select(p => $"{p.Key}={p.Value}")),
        IEnumerable<string> list when value is not string => list.Any() ? string.Join(", ", list) : "none",
        IFormattable formattable => formattable.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "none",
    };

    /// <summary>A duration as Go writes one, without zero parts: <c>10s</c>, <c>5m</c>, <c>1m30s</c>, <c>10ms</c>.</summary>
    public static string Duration(TimeSpan duration)
    {
        if (duration == TimeSpan.Zero)
        {
            return "0s";
        }

        var text = new System.Text.StringBuilder();
        var hours = (long)duration.TotalHours;
        Append(text, hours, "h");
        Append(text, duration.Minutes, "m");
        Append(text, duration.Seconds, "s");
        Append(text, duration.Milliseconds, "ms");
        return text.ToString();
    }

    /// <summary>A size as a Kubernetes quantity: the largest binary suffix that divides it (<c>10Mi</c>), else bytes.</summary>
    public static string Size(long bytes)
    {
        foreach (var (suffix, factor) in BinarySuffixes)
        {
            if (bytes != 0 && bytes % factor == 0)
            {
                return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / factor}{suffix}");
            }
        }

        return bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Append(System.Text.StringBuilder text, long amount, string unit)
    {
        if (amount != 0)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{amount}{unit}");
        }
    }
}
