using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Krustlet.Host.KubeletApi;

/// <summary>The query parameters of <c>GET /containerLogs/…</c>, as the kubelet takes them.</summary>
internal sealed record ContainerLogQuery(
    bool Follow,
    bool Previous,
    bool Timestamps,
    long? TailLines,
    long? LimitBytes,
    long? SinceSeconds,
    DateTimeOffset? SinceTime)
{
    /// <summary>The earliest entry time to show, or null for all.</summary>
    public DateTimeOffset? Since(DateTimeOffset now) => SinceTime ?? (SinceSeconds is { } seconds ? now.AddSeconds(-seconds) : null);

    /// <summary>Parses the query; on a bad value returns null and a message naming the parameter.</summary>
    public static (ContainerLogQuery? Query, string Error) Parse(IQueryCollection query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var errors = new List<string>();
        var follow = Bool(query, "follow", errors);
        var previous = Bool(query, "previous", errors);
        var timestamps = Bool(query, "timestamps", errors);
        var tailLines = Number(query, "tailLines", 0, errors);
        var limitBytes = Number(query, "limitBytes", 1, errors);
        var sinceSeconds = Number(query, "sinceSeconds", 1, errors);
        DateTimeOffset? sinceTime = null;
        if (Single(query, "sinceTime", errors) is { } text)
        {
            if (CriLogEntry.TryParseTime(text, out var parsed))
            {
                sinceTime = parsed;
            }
            else
            {
                errors.Add($"sinceTime: \"{text}\" is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
            }
        }

        if (sinceSeconds is not null && query.ContainsKey("sinceTime"))
        {
            errors.Add("at most one of sinceTime or sinceSeconds may be given");
        }

        return errors.Count > 0
            ? (null, string.Join("; ", errors))
            : (new ContainerLogQuery(follow, previous, timestamps, tailLines, limitBytes, sinceSeconds, sinceTime), string.Empty);
    }

    private static string? Single(IQueryCollection query, string name, List<string> errors)
    {
        if (!query.TryGetValue(name, out var values))
        {
            return null;
        }

        if (values.Count > 1)
        {
            errors.Add($"{name}: given {values.Count} times, expected once");
            return null;
        }

        return values[0] ?? string.Empty;
    }

    /// <summary>true/false/1/0 in any case; an empty value (<c>?follow</c>) means true.</summary>
    private static bool Bool(IQueryCollection query, string name, List<string> errors)
    {
        var text = Single(query, name, errors);
        switch (text?.ToUpperInvariant())
        {
            case null:
            case "FALSE":
            case "0":
                return false;
            case "":
            case "TRUE":
            case "1":
                return true;
            default:
                errors.Add($"{name}: \"{text}\" is not a boolean (true or false)");
                return false;
        }
    }

    private static long? Number(IQueryCollection query, string name, long minimum, List<string> errors)
    {
        if (Single(query, name, errors) is not { } text)
        {
            return null;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            errors.Add($"{name}: \"{text}\" is not an integer");
            return null;
        }

        if (value < minimum)
        {
            errors.Add($"{name}: {value} must be at least {minimum}");
            return null;
        }

        return value;
    }
}
