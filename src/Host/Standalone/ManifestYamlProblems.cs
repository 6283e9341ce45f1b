using System.Text.RegularExpressions;
using Krustlet.Stages.PodEvents;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Krustlet.Host.Standalone;

/// <summary>
/// Turns what the YAML reader and the Kubernetes deserializer throw about a manifest into what a user
/// can act on: where (line, column and the field's path, as the API server names fields) and what was
/// expected against what was found, never a .NET type name or an exception's text.
/// </summary>
internal static partial class ManifestYamlProblems
{
    /// <summary>The most nodes a manifest may expand to through its aliases, as a multiple of the nodes it spells out (go-yaml refuses such files too).</summary>
    public const int AliasExpansionRatio = 10;

    /// <summary>Expansion below this many nodes is never refused.</summary>
    public const int AliasExpansionFloor = 10_000;

    /// <summary>
    /// Says whether a document's aliases expand it far past what it spells out (a billion-laughs file),
    /// counting expanded nodes without building them.
    /// </summary>
    public static string? ExcessiveAliasing(YamlDocument document)
    {
        var literal = Distinct(document.RootNode);
        var limit = Math.Max(AliasExpansionFloor, (long)literal * AliasExpansionRatio);
        var sizes = new Dictionary<YamlNode, long>(ReferenceEqualityComparer.Instance);
        long Size(YamlNode node)
        {
            if (sizes.TryGetValue(node, out var known))
            {
                return known;
            }

            sizes[node] = 1; // a cycle counts once
            long size = 1;
            foreach (var child in Children(node))
            {
                size = Math.Min(long.MaxValue / 2, size + Size(child));
            }

            sizes[node] = size;
            return size;
        }

        var expanded = Size(document.RootNode);
        return expanded > limit
            ? $"line {document.RootNode.Start.Line}: the document contains excessive aliasing: its aliases expand it to {(expanded >= long.MaxValue / 2 ? "an unbounded number of" : expanded.ToString(System.Globalization.CultureInfo.InvariantCulture))} nodes, it spells out {literal}"
            : null;
    }

    // The nodes the text spells out: an aliased node counts once (YamlDocument.AllNodes would expand it).
    private static long Distinct(YamlNode root)
    {
        var seen = new HashSet<YamlNode>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<YamlNode>();
        pending.Push(root);
        while (pending.TryPop(out var node))
        {
            if (!seen.Add(node))
            {
                continue;
            }

            foreach (var child in Children(node))
            {
                pending.Push(child);
            }
        }

        return seen.Count;
    }

    private static IEnumerable<YamlNode> Children(YamlNode node) => node switch
    {
        YamlSequenceNode sequence => sequence.Children,
        YamlMappingNode mapping => mapping.Children.SelectMany(c => new[] { c.Key, c.Value }),
        _ => [],
    };

    /// <summary>A message for a value the deserializer could not read into the field it sits in.</summary>
    public static string Describe(string text, YamlException ex)
    {
        var at = $"line {ex.Start.Line}, column {ex.Start.Column}";
        var expected = Expected(ex);
        if (expected is null && ex.InnerException is null)
        {
            return $"{at}: {ex.Message}"; // a syntax error: the reader's own words say what is wrong
        }

        var (path, found) = Locate(text, ex.Start);
        var field = path is null ? string.Empty : $"{path}: ";
        return $"{at}: {field}expected {expected ?? "a value of another type"}, found {found ?? "this value"}";
    }

    private static string? Expected(YamlException ex)
    {
        var inner = ex.InnerException?.Message ?? string.Empty;
        if (CastTarget().Match(inner) is { Success: true } cast)
        {
            return ObjectFieldProblems.Expected(cast.Groups["to"].Value);
        }

        if (ex.InnerException is { } cause && (ObjectFieldProblems.RefusedQuantity(cause) is not null || inner.Contains("ResourceQuantity", StringComparison.Ordinal)))
        {
            return ObjectFieldProblems.Quantity;
        }

        if (ex.InnerException is FormatException or OverflowException)
        {
            return "a number";
        }

        if (NoDeserializer().Match(ex.Message) is { Success: true } target)
        {
            return ObjectFieldProblems.Expected(target.Groups["type"].Value);
        }

        return null;
    }

    /// <summary>The path (<c>spec.containers[0].ports[0].containerPort</c>) and a description of the node that starts at <paramref name="mark"/>.</summary>
    private static (string? Path, string? Found) Locate(string text, Mark mark)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException)
        {
            return (null, null);
        }

        foreach (var document in stream.Documents)
        {
            if (Find(document.RootNode, mark, string.Empty, new HashSet<YamlNode>(ReferenceEqualityComparer.Instance)) is { } hit)
            {
                return (hit.Path.Length == 0 ? null : hit.Path, Found(hit.Node));
            }
        }

        return (null, null);
    }

    private static (string Path, YamlNode Node)? Find(YamlNode node, Mark mark, string path, HashSet<YamlNode> seen)
    {
        if (node.Start.Line == mark.Line && node.Start.Column == mark.Column)
        {
            return (path, node);
        }

        if (!seen.Add(node))
        {
            return null;
        }

        switch (node)
        {
            case YamlMappingNode mapping:
                foreach (var (key, value) in mapping.Children)
                {
                    var name = key is YamlScalarNode { Value: { } k } ? k : "?";
                    if (Find(value, mark, path.Length == 0 ? name : $"{path}.{name}", seen) is { } hit)
                    {
                        return hit;
                    }
                }

                break;
            case YamlSequenceNode sequence:
                for (var i = 0; i < sequence.Children.Count; i++)
                {
                    if (Find(sequence.Children[i], mark, $"{path}[{i}]", seen) is { } hit)
                    {
                        return hit;
                    }
                }

                break;
            default:
                break;
        }

        return null;
    }

    private static string Found(YamlNode node) => node switch
    {
        YamlScalarNode { Value: var value } => value is { Length: > 60 } ? $"\"{value[..60]}...\"" : $"\"{value}\"",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => "this value",
    };

    [GeneratedRegex(@"Invalid cast from '(?<from>[^']*)' to '(?<to>[^']*)'", RegexOptions.CultureInvariant)]
    private static partial Regex CastTarget();

    [GeneratedRegex(@"deserialize the node into type (?<type>[^\s,]+)", RegexOptions.CultureInvariant)]
    private static partial Regex NoDeserializer();
}
