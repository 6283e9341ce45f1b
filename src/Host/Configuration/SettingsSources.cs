using System.Text.Json;
using System.Text.Json.Nodes;

namespace Krustlet.Host.Configuration;

/// <summary>A setting's raw value from one source: text, list items or map entries, and where it came from.</summary>
public sealed record RawSetting(Setting Setting, string Source, string? Text = null, IReadOnlyList<string>? Items = null, IReadOnlyDictionary<string, string>? Entries = null);

/// <summary>
/// Reads the three sources of settings into raw values keyed by setting: the JSON settings file, the
/// <c>KRUSTLET_</c> environment variables and the command-line flags. A later source replaces a whole
/// value from an earlier one. Unknown keys and malformed input are problems, each naming its source.
/// </summary>
public static class SettingsSources
{
    public const string EnvironmentPrefix = "KRUSTLET_";

    /// <summary>Environment variables with the prefix that are not settings (secrets read where they are used).</summary>
    public static IReadOnlySet<string> NonSettingVariables { get; } = new HashSet<string>(StringComparer.Ordinal) { "KRUSTLET_REGISTRY_PASSWORD" };

    /// <summary>Reads a JSON settings file: sections as nested objects, lists as arrays, maps as objects.</summary>
    public static IReadOnlyList<RawSetting> FromFile(string path, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add($"the settings file {path} cannot be read: {ex.Message}");
            return [];
        }
        catch (JsonException ex)
        {
            problems.Add($"the settings file {path} is not valid JSON: {Krustlet.Pipeline.Diagnostics.JsonErrorText.Describe(ex)}");
            return [];
        }

        if (root is not JsonObject top)
        {
            problems.Add($"the settings file {path} must hold a JSON object.");
            return [];
        }

        var found = new List<RawSetting>();
        Walk(top, string.Empty, path, found, problems);
        return found;
    }

    private static void Walk(JsonObject node, string prefix, string file, List<RawSetting> found, List<string> problems)
    {
        foreach (var (name, value) in node)
        {
            var key = prefix.Length == 0 ? name : $"{prefix}:{name}";
            if (SettingsCatalog.Find(key) is { } setting)
            {
                var source = file;
                switch (setting.Kind, value)
                {
                    case (SettingKind.List, JsonArray array):
                        found.Add(new RawSetting(setting, source, Items: [.. array.Select(i => Scalar(i) ?? string.Empty)]));
                        break;
                    case (SettingKind.Map, JsonObject map):
                        found.Add(new RawSetting(setting, source, Entries: map.ToDictionary(
                            e => e.Key,
                            e => e.Value is JsonArray items ? string.Join(';', items.Select(i => Scalar(i) ?? string.Empty)) : Scalar(e.Value) ?? string.Empty,
                            StringComparer.Ordinal)));
                        break;
                    case (SettingKind.List or SettingKind.Map, _):
                        problems.Add($"{setting.Key} (from {source}) must be a JSON {(setting.Kind == SettingKind.List ? "array" : "object")}.");
                        break;
                    case (_, JsonObject or JsonArray):
                        problems.Add($"{setting.Key} (from {source}) must be a single value, not a JSON {(value is JsonObject ? "object" : "array")}.");
                        break;
                    default:
                        found.Add(new RawSetting(setting, source, Text: Scalar(value) ?? string.Empty));
                        break;
                }
            }
            else if (value is JsonObject child && SettingsCatalog.All.Any(s => s.Key.StartsWith(key + ":", StringComparison.OrdinalIgnoreCase)))
            {
                Walk(child, key, file, found, problems);
            }
            else
            {
                problems.Add($"{file}: {key} is not a setting{Suggest(key)}.");
            }
        }
    }

    private static string? Scalar(JsonNode? node) => node switch
    {
        null => null,
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        JsonValue value => value.ToJsonString(),
        _ => node.ToJsonString(),
    };

    /// <summary>
    /// Reads <c>KRUSTLET_*</c> variables: sections separated by <c>__</c>, each matched to the setting's
    /// name ignoring case and underscores (<c>KRUSTLET_NODE__MAX_PODS</c> is <c>Node:MaxPods</c>).
    /// Lists are comma-separated, maps <c>k=v,k2=v2</c>.
    /// </summary>
    public static IReadOnlyList<RawSetting> FromEnvironment(IReadOnlyDictionary<string, string> environment, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(problems);
        var found = new List<RawSetting>();
        foreach (var (name, value) in environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) || NonSettingVariables.Contains(name))
            {
                continue;
            }

            var wanted = Normalize(name[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal));
            var setting = SettingsCatalog.All.FirstOrDefault(s => Normalize(s.Key) == wanted);
            if (setting is null)
            {
                problems.Add($"environment variable {name} is not a setting.");
                continue;
            }

            found.Add(FromText(setting, $"{name}", value, problems));
        }

        return found;
    }

    /// <summary>A value given as text (environment or flag): lists split on commas, maps on commas and '='.</summary>
    public static RawSetting FromText(Setting setting, string source, string value, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(problems);
        return setting.Kind switch
        {
            SettingKind.List => new RawSetting(setting, source, Items: Split(value)),
            SettingKind.Map => new RawSetting(setting, source, Entries: Entries(setting, source, Split(value), problems)),
            _ => new RawSetting(setting, source, Text: value),
        };
    }

    /// <summary>Repeated flag values: each item of a list, each <c>k=v</c> of a map, or the last for a single value.</summary>
    public static RawSetting FromFlag(Setting setting, string flag, IReadOnlyList<string> values, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentNullException.ThrowIfNull(values);
        return setting.Kind switch
        {
            SettingKind.List => new RawSetting(setting, flag, Items: [.. values.SelectMany(Split)]),
            SettingKind.Map => new RawSetting(setting, flag, Entries: Entries(setting, flag, [.. values.SelectMany(Split)], problems)),
            _ => new RawSetting(setting, flag, Text: values[^1]),
        };
    }

    /// <summary>A <c>--set Key=Value</c> flag.</summary>
    public static RawSetting? FromAssignment(string assignment, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        ArgumentNullException.ThrowIfNull(problems);
        var equals = assignment.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            problems.Add($"--set {assignment} must be Key=Value, e.g. --set Pipeline:Stages:Run:Parallelism=16.");
            return null;
        }

        var key = assignment[..equals].Trim();
        if (SettingsCatalog.Find(key) is not { } setting)
        {
            problems.Add($"--set {key}: not a setting{Suggest(key)}.");
            return null;
        }

        return FromText(setting, $"--set {setting.Key}", assignment[(equals + 1)..], problems);
    }

    private static List<string> Split(string value) =>
        [.. value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];

    private static Dictionary<string, string> Entries(Setting setting, string source, IEnumerable<string> pairs, List<string> problems)
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                problems.Add($"{setting.Key} (from {source}): '{pair}' must be key=value.");
                continue;
            }

            entries[pair[..equals].Trim()] = pair[(equals + 1)..].Trim();
        }

        return entries;
    }

    private static string Normalize(string key) => key.Replace("_", string.Empty, StringComparison.Ordinal).ToUpperInvariant();

    private static string Suggest(string key)
    {
        var section = key.Split(':')[0];
        var siblings = SettingsCatalog.All.Where(s => s.Key.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase)).Select(s => s.Key).Take(8).ToList();
        return siblings.Count > 0 ? $" (the {section} settings are {string.Join(", ", siblings)})" : $" (see the README's configuration reference)";
    }
}
