using System.Text.Json;
using System.Text.RegularExpressions;

namespace Krustlet.Stages.PodEvents;

/// <summary>
/// Says what was wrong with a Kubernetes object a deserializer refused, in the API's terms: the
/// field's path and the kind of value it takes (a list, a mapping, a quantity), never a .NET type name.
/// Shared by the watch-stream decoder (JSON) and the static pod manifests (YAML).
/// </summary>
public static partial class ObjectFieldProblems
{
    /// <summary>What a value of the .NET type a deserializer named must look like.</summary>
    public static string Expected(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type switch
        {
            _ when type.Contains("IList`1", StringComparison.Ordinal) || type.Contains("List`1", StringComparison.Ordinal) || type.EndsWith("[]", StringComparison.Ordinal) => "a list",
            _ when type.Contains("Dictionary`2", StringComparison.Ordinal) => "a mapping",
            _ when type.Contains("IntOrString", StringComparison.Ordinal) => "a number or a string",
            _ when type.Contains("ResourceQuantity", StringComparison.Ordinal) => Quantity,
            _ when type.Contains("System.Int", StringComparison.Ordinal) || type.Contains("System.Long", StringComparison.Ordinal) => "a whole number",
            _ when type.Contains("System.Double", StringComparison.Ordinal) || type.Contains("System.Decimal", StringComparison.Ordinal) => "a number",
            _ when type.Contains("System.Boolean", StringComparison.Ordinal) => "true or false",
            _ when type.Contains("System.DateTime", StringComparison.Ordinal) => "a time (RFC 3339, such as 2026-01-02T15:04:05Z)",
            _ when type.StartsWith("System.String", StringComparison.Ordinal) => "a string",
            _ when KubernetesType().Match(type) is { Success: true } k8s => $"an object ({k8s.Groups["name"].Value})",
            _ => "a value of another type",
        };
    }

    /// <summary>What a quantity looks like, in the API server's words.</summary>
    public const string Quantity = "a quantity (such as 128Mi, 500m or 2; the API server's pattern is '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$')";

    /// <summary>The value a quantity parser refused, from its message, or null.</summary>
    public static string? RefusedQuantity(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex is FormatException && FractionText().Match(ex.Message) is { Success: true } m ? m.Groups["value"].Value : null;
    }

    /// <summary>The value KubernetesClient's time converter refused, from its message, or null.</summary>
    public static string? RefusedTime(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex is FormatException && TimeText().Match(ex.Message) is { Success: true } m ? m.Groups["value"].Value : null;
    }

    /// <summary>The first value an exception's message quotes ('like this'), or null.</summary>
    public static string? QuotedValue(string message) => Quoted().Match(message ?? string.Empty) is { Success: true } m ? m.Groups["value"].Value : null;

    /// <summary>A JSON deserializer's refusal as "path: expected ..., found ...".</summary>
    public static string Describe(JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        var path = ex.Path is { Length: > 1 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;
        var expected = ConvertedTo().Match(ex.Message) is { Success: true } m ? Expected(m.Groups["type"].Value) : null;
        if (expected is null)
        {
            // The JSON itself is broken, or a value the reader cannot take: its own words, without its position suffix.
            return $"{(path is null ? string.Empty : path + ": ")}{Krustlet.Pipeline.Diagnostics.JsonErrorText.Describe(ex, withLine: false)}";
        }

        return $"{path ?? "the object"}: expected {expected}";
    }

    [GeneratedRegex(@"k8s\.Models\.V\d+(?:alpha\d+|beta\d+)?(?<name>[A-Za-z]+)", RegexOptions.CultureInvariant)]
    private static partial Regex KubernetesType();

    [GeneratedRegex(@"could not be converted to (?<type>[^\s]+?)\.? Path:", RegexOptions.CultureInvariant)]
    private static partial Regex ConvertedTo();

    [GeneratedRegex(@"^Unable to parse (?<value>.*) as RFC3339", RegexOptions.CultureInvariant)]
    private static partial Regex TimeText();

    [GeneratedRegex(@"'(?<value>[^']{1,200})'", RegexOptions.CultureInvariant)]
    private static partial Regex Quoted();

    [GeneratedRegex(@"^The string '(?<value>.*)' cannot be converted to fraction", RegexOptions.CultureInvariant)]
    private static partial Regex FractionText();
}
