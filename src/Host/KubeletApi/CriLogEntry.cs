using System.Globalization;
using Krustlet.Stages.Run;

namespace Krustlet.Host.KubeletApi;

/// <summary>One entry of a CRI log file: <c>&lt;RFC3339Nano time&gt; stdout|stderr F|P &lt;text&gt;</c>.</summary>
/// <param name="Timestamp">The time as written in the file.</param>
/// <param name="Time">The time, parsed.</param>
/// <param name="Stream">stdout or stderr.</param>
/// <param name="Partial">A <c>P</c> entry: its line continues in the stream's next entry.</param>
/// <param name="Text">The output, without the newline.</param>
internal sealed record CriLogEntry(string Timestamp, DateTimeOffset Time, LogStream Stream, bool Partial, byte[] Text)
{
    /// <summary>Parses one line of a log file (without its newline); null when it is not a CRI entry.</summary>
    public static CriLogEntry? Parse(ReadOnlySpan<byte> line)
    {
        var first = line.IndexOf((byte)' ');
        if (first <= 0)
        {
            return null;
        }

        var timestamp = System.Text.Encoding.ASCII.GetString(line[..first]);
        var rest = line[(first + 1)..];
        var second = rest.IndexOf((byte)' ');
        if (second <= 0 || !TryParseTime(timestamp, out var time))
        {
            return null;
        }

        LogStream stream;
        if (rest[..second].SequenceEqual("stdout"u8))
        {
            stream = LogStream.Stdout;
        }
        else if (rest[..second].SequenceEqual("stderr"u8))
        {
            stream = LogStream.Stderr;
        }
        else
        {
            return null;
        }

        rest = rest[(second + 1)..];
        var third = rest.IndexOf((byte)' ');
        var tags = third < 0 ? rest : rest[..third];
        var text = third < 0 ? [] : rest[(third + 1)..].ToArray();
        // Tags are ':'-separated flags; the first says whether the line is partial (P) or full (F).
        var tag = tags.IndexOf((byte)':') is var colon and >= 0 ? tags[..colon] : tags;
        return tag.SequenceEqual("P"u8) ? new(timestamp, time, stream, true, text)
            : tag.SequenceEqual("F"u8) ? new(timestamp, time, stream, false, text)
            : null;
    }

    /// <summary>Parses RFC 3339 with up to nine fractional digits (.NET keeps seven, the rest are dropped).</summary>
    public static bool TryParseTime(string text, out DateTimeOffset time)
    {
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7)
            {
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }

        return DateTimeOffset.TryParseExact(
            text,
            ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"],
            CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal,
            out time);
    }
}

/// <summary>One line of container output: partial entries joined, stamped with the time of its first entry.</summary>
internal sealed record LogLine(string Timestamp, DateTimeOffset Time, LogStream Stream, byte[] Text);

/// <summary>Joins each stream's partial (<c>P</c>) entries with the entry that completes them.</summary>
internal sealed class LogLineAssembler
{
    private readonly Dictionary<LogStream, (CriLogEntry First, List<byte> Text)> _pending = [];

    /// <summary>The completed line, or null while the entry's line continues.</summary>
    public LogLine? Add(CriLogEntry entry)
    {
        if (_pending.Remove(entry.Stream, out var pending))
        {
            pending.Text.AddRange(entry.Text);
            if (entry.Partial)
            {
                _pending[entry.Stream] = pending;
                return null;
            }

            return new LogLine(pending.First.Timestamp, pending.First.Time, entry.Stream, [.. pending.Text]);
        }

        if (entry.Partial)
        {
            _pending[entry.Stream] = (entry, [.. entry.Text]);
            return null;
        }

        return new LogLine(entry.Timestamp, entry.Time, entry.Stream, entry.Text);
    }

    /// <summary>Lines left unfinished (their run ended mid-line), oldest first.</summary>
    public IEnumerable<LogLine> Flush()
    {
        var lines = _pending.Values.OrderBy(p => p.First.Time).Select(p => new LogLine(p.First.Timestamp, p.First.Time, p.First.Stream, [.. p.Text])).ToList();
        _pending.Clear();
        return lines;
    }
}
