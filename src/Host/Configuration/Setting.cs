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

    /// <summary>A list: a JSON array in the settings file, comma-separated text elsewhere, a repeated flag.</summary>
    List,

    /// <summary>Key to value: a JSON object in the settings file, <c>k=v,k2=v2</c> elsewhere, a repeated <c>k=v</c> flag.</summary>
    Map,
}

/// <summary>
/// One setting: its key in the settings file (sections joined by <c>:</c>), how it is read, its default
/// as the README states it, and its command-line flag. The environment variable is derived from the key.
/// </summary>
/// <param name="Key">The key, e.g. <c>Node:MaxPods</c>.</param>
/// <param name="Kind">How its text is read.</param>
/// <param name="Default">The default, as documented (text shown in the README's reference).</param>
/// <param name="Description">What it does, one sentence.</param>
/// <param name="Flag">The command-line flag, e.g. <c>--max-pods</c>; every setting can also be given with <c>--set Key=Value</c>.</param>
public sealed record Setting(string Key, SettingKind Kind, string Default, string Description, string? Flag = null)
{
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
