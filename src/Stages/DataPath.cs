using System.Globalization;

namespace Krustlet.Stages;

/// <summary>
/// The one way the agent builds a path under one of its directories from names it was given (a pod's
/// namespace, name or UID, a container or volume name): each segment must be a single plain name, the
/// result must resolve under the root, and no segment on the way may already be a symbolic link.
/// Admission refuses invalid names before any stage builds a path; this is the second line, so a name
/// that slips past it (a replayed event, a stage substituted in a test, the kubelet API's URL) still
/// cannot write or read outside the data directory.
/// </summary>
/// <remarks>
/// Links are checked when the path is built; a link made afterwards by someone who can already write
/// into the data directory is out of scope (that user owns the agent's files anyway).
/// </remarks>
public static class DataPath
{
    /// <summary>The path of <paramref name="segments"/> under <paramref name="root"/>.</summary>
    /// <exception cref="UnsafePathException">A segment is not a plain name, or the path would leave the root.</exception>
    public static string Under(string root, params ReadOnlySpan<string> segments) =>
        Check(root, segments) is { } problem ? throw new UnsafePathException(problem) : Combine(root, segments);

    /// <summary>As <see cref="Under"/>, or null where it would throw (a teardown of a pod whose names were refused: nothing is there).</summary>
    public static string? TryUnder(string root, params ReadOnlySpan<string> segments) =>
        Check(root, segments) is null ? Combine(root, segments) : null;

    /// <summary>Why <paramref name="segment"/> cannot be one element of a path, or null when it can.</summary>
    public static string? SegmentProblem(string? segment)
    {
        if (string.IsNullOrEmpty(segment))
        {
            return "an empty path segment";
        }

        if (segment is "." or "..")
        {
            return $"the path segment \"{segment}\" names a directory itself";
        }

        foreach (var c in segment)
        {
            if (c is '/' or '\\' or '\0' || char.IsControl(c))
            {
                return $"the path segment \"{Printable(segment)}\" holds a separator or control character";
            }
        }

        return null;
    }

    private static string? Check(string root, ReadOnlySpan<string> segments)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        if (segments.IsEmpty)
        {
            return "no path segments";
        }

        foreach (var segment in segments)
        {
            if (SegmentProblem(segment) is { } problem)
            {
                return problem;
            }
        }

        var full = Path.GetFullPath(root);
        var prefix = Path.EndsInDirectorySeparator(full) ? full : full + Path.DirectorySeparatorChar;
        var current = full;
        foreach (var segment in segments)
        {
            current = Path.Combine(current, segment);
            if (!Path.GetFullPath(current).StartsWith(prefix, StringComparison.Ordinal))
            {
                return $"\"{Printable(segment)}\" leads outside {full}";
            }

            if (new FileInfo(current).LinkTarget is not null)
            {
                return $"{current} is a symbolic link; the agent does not follow links it did not make";
            }
        }

        return null;
    }

    private static string Combine(string root, ReadOnlySpan<string> segments)
    {
        var path = root;
        foreach (var segment in segments)
        {
            path = Path.Combine(path, segment);
        }

        return path;
    }

    private static string Printable(string value) =>
        string.Concat(value.Select(c => char.IsControl(c) ? string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}") : c.ToString()));
}

/// <summary>A path built from a name would leave the agent's directory, or pass through a link.</summary>
public sealed class UnsafePathException(string message) : IOException(message);
