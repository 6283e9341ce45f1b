using System.CommandLine;
using System.Text;
using Krustlet.Host.Configuration;

namespace Krustlet.Host;

/// <summary><c>krustlet settings</c>: prints every setting, its environment variable, flag and default (the README's reference).</summary>
internal static class SettingsCommand
{
    public static Command Build(TextWriter output)
    {
        var command = new Command("settings", "Print every setting with its environment variable, flag and default, as a markdown table.");
        command.SetAction(_ =>
        {
            output.Write(Reference());
            return 0;
        });
        return command;
    }

    /// <summary>The configuration reference table, as the README carries it.</summary>
    public static string Reference()
    {
        var text = new StringBuilder();
        text.Append("| setting (file key) | environment variable | flag | default | what it does |\n");
        text.Append("|---|---|---|---|---|\n");
        foreach (var setting in SettingsCatalog.All)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"| `{setting.Key}` | `{setting.EnvironmentVariable}` | {(setting.Flag is null ? "`--set`" : $"`{setting.Flag}`")} | {setting.DefaultText} | {setting.Description} |\n");
        }

        return text.ToString();
    }
}
